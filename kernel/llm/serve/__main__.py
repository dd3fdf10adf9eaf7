import sys

from kernel.llm.serve.server import main

sys.exit(main())
