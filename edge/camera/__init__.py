"""Video detectors at the edge: detection zones as virtual loops, camera tamper (issue 8)."""
