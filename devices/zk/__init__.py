"""ZKTeco attendance machines: the ZK protocol as pure code (``devices.zk.*``).

Modules, from the wire up — none opens a socket, logs or sleeps:

* ``codes``     command, reply, event and table codes; fixed sizes
* ``framing``   the 8-byte header and checksum, TCP framing (``TcpDeframer``), UDP packets
* ``auth``      comm-key scrambling (``make_commkey``, ``commkey_matches``)
* ``zktime``    the machine's local-time encodings (31-day months; 6-byte event time)
* ``info``      option strings, firmware version, free sizes and counts
* ``records``   user (28/72-byte) and attendance (8/16/40/49-byte) records and tables
* ``transfer``  the buffered read (1503 / 1504 / PREPARE_DATA / DATA / FREE_DATA) and chunking
* ``payloads``  single-packet command payloads (time, set/delete user, unlock)
* ``events``    CMD_REG_EVENT and EF_ATTLOG punch events
* ``session``   ``ClientSession``: request numbering and reply checks for a driver, no I/O
* ``errors``    ``ZkError`` → ``ZkProtocolError`` / ``ZkConnectionError`` / ``ZkDeviceError``

Both the emulator (``firmware_sim.zk``) and the driver use these, so they cannot disagree.
"""
