-- kota: always
-- One intersection's recent detector samples (the dashboard's last-hour charts, GET
-- /api/intersections/{id}/history) without reading every intersection's: on a city's worth of
-- detectors the time-only BRIN index (plain tables) or the chunk index (TimescaleDB) reads all
-- of them.

CREATE INDEX detector_sample_by_intersection ON detector_sample (intersection, ts DESC);
