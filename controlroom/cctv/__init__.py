"""CCTV in the control room: camera registry, alarms, PTZ and snapshot commands, snapshots."""
