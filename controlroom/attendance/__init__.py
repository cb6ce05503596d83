"""Attendance in the control room: punches stored once, machine registry, alarms."""
