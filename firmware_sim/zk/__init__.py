"""Emulated ZKTeco attendance machines speaking the ZK protocol over TCP and UDP.

``profiles`` (firmware families, ``MachineConfig``), ``clock`` (drifting local time),
``machine`` (``ZkMachine``: memory, faults, the answer to each request), ``server``
(``ZkServer``, ``serve_machines``, ``ZkEmulatorThread``), ``seed`` (sample staff and punches).
"""
