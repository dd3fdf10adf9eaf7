"""AIOS as a service: a detached kernel on a private unix socket, and the shell's client for it.

  run.py      start (detached, or --foreground for systemd) and stop the daemon
  server.py   the socket server: clients multiplexed onto one KernelClient
  conn.py     one client's connection: what it may send, its bounded outbound queue
  remote.py   RemoteKernelClient: KernelClient's calls over the socket (simulator.py --connect)
  frames.py   the wire format (length-prefixed JSON; never pickle)
  paths.py    default socket, private folder and pid file checks, the key file clients present

Light modules: neither side imports torch.
"""
