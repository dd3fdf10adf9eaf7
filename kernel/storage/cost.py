"""What a stored version and a record cost against ``--quota_storage_bytes``: the bytes SQLite needs for them.

An app's storage usage is the sum of ``version_cost`` over every kept version
and ``record_cost`` over every record (db.py sums them in SQL with the two
functions it registers). Names, metadata, rows and index entries count, not
only the data: 1,500 empty records with 256-character names held 2 MB of
``storage.sqlite3`` when only data bytes were counted.

The model follows SQLite's file format (https://sqlite.org/fileformat2.html)
for the schema of db.py. ``key`` is the UTF-8 bytes of app name + record name,
stored in the row and again in the primary-key index of both tables.

  a row (records or versions; rowids only grow, so rows are appended to the
      rightmost leaf page): its share of a leaf page, page / (rows of its size
      FILL of a page holds), so a 2.1 KB row that fills a page alone costs the
      page; data past what fits in the leaf (4,061 bytes on a 4 KiB page)
      costs whole overflow pages.
  an index entry (key + INDEX_CELL): its share of a half-full leaf page, since
      keys arrive in any order (in descending order every page splits to half
      full), plus a copy of a key per leaf in the interior pages.

Measured on SQLite 3.40.1, 4 KiB pages (tests/unit/test_storage_cost.py checks
it): 150-3,000 records of each shape (names of 6-256 characters in ascending,
random and descending order, data of 0-40 KB, UTF-8 names, several versions),
the bytes of the four b-trees summed from SQLite's ``dbstat`` table, against
the charge. Per record of one version, app name "MathAgent":

  record name, data        bytes used (ascending / descending names)   charged
  6 chars, empty           221 / 251                                   337
  256 chars, empty         1,319 / 1,827                               2,007
  9 chars, 1,000 bytes     1,495                                       1,579
  9 chars, 2,000 bytes     4,219 (one row per leaf page)               4,320
  9 chars, 8,000 bytes     8,315                                       8,416

Overwrites that prune old versions leave pages partly empty; SQLite reuses
emptied pages and merges pages under a third full (auto_vacuum stays off: the
file stops growing rather than shrinking). FILL covers that: after 6,000
writes of 0-9 KB to 50-300 records keeping 1-3 versions, the file stayed
within the charge + 64 KiB (it was 1.3% past it with rows counted on whole
pages).

Not covered: SQLite fills leaf pages in order, and a row that does not fit
in what is left of the last page starts a new one. Rows whose sizes are picked
to defeat that (an empty one, then one of ~3.9 KB, again and again) occupy up
to twice what they are charged (1.84x measured, test_storage_cost.py);
charging every row for that worst case would double the price of every
record of 1-4 KB.
"""

from __future__ import annotations

PAGE = 4096  # SQLite's default page size; db.py passes the database's own
VERSION_ROW = 106  # a versions row besides data and key, at most: record header (14), version (3), size (3),
#                    sha256 (64 hex), created (8), pid (2), op ("rollback": 8), base (3)
RECORD_ROW = 28  # a records row besides key and group, at most: record header (9), head (3), created, updated (8 each)
CELL = 9  # per row in a leaf page: payload length and rowid varints (7 at most), the cell pointer (2)
INTERIOR = 16  # per leaf page, its share of the table's interior pages (a child pointer and a rowid each)
FILL = 15 / 16  # of a leaf page a row may count on: pruning and overwrites with sizes that vary leave pages partly
#                 empty (measured: files 1.3% past the exact layout after 6,000 writes of 0-9 KB, keeping 1-3 versions)
INDEX_CELL = 16  # an index entry besides its key: record header, version, rowid, payload length, cell pointer
NAME_MAX_BYTES = 256  # a record name, in UTF-8 (fs.write): keeps index keys well inside a page


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def row_bytes(payload: int, page: int = PAGE) -> int:
    """Bytes of table b-tree a row of ``payload`` record bytes takes: its share of a leaf page, whole overflow pages."""
    usable = page  # no reserved bytes per page
    max_local = usable - 35
    min_local = (usable - 12) * 32 // 255 - 23
    local, overflow = payload, 0
    if payload > max_local:
        local = min_local + (payload - min_local) % (usable - 4)
        if local > max_local:
            local = min_local
        overflow = -(-(payload - local) // (usable - 4))  # pages of usable - 4 bytes (4: the next-page pointer)
    cell = local + CELL + (4 if overflow else 0)
    per_page = max(1, int((usable - 8) * FILL) // cell)  # a leaf page's header is 8 bytes
    return -(-(page + INTERIOR) // per_page) + overflow * page


def index_bytes(key: int, page: int = PAGE) -> int:
    """Bytes of index b-tree an entry takes: its share of a half-full leaf page (keys arrive in any order: in
    descending order every page splits to half full), plus one key per leaf in the interior pages."""
    cell = key + INDEX_CELL
    per_page = max(1, (page - 8) // 2 // cell)
    return -(-(page + cell) // per_page)


def version_cost(owner: str, name: str, nbytes: int, page: int = PAGE) -> int:
    """Bytes one kept version of ``owner``'s record ``name`` with ``nbytes`` of data is charged."""
    key = utf8_len(owner) + utf8_len(name)
    return row_bytes(nbytes + key + VERSION_ROW, page) + index_bytes(key, page)


def record_cost(owner: str, name: str, group: str, page: int = PAGE) -> int:
    """Bytes a record is charged besides its versions (its row in ``records`` names the writer's group)."""
    key = utf8_len(owner) + utf8_len(name)
    return row_bytes(key + utf8_len(group) + RECORD_ROW, page) + index_bytes(key, page)
