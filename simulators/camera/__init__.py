"""A rendered road scene with exact ground truth, for the edge's video detectors (issue 8)."""
