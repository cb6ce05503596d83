"""An emulated ONVIF Profile S PTZ camera speaking SOAP 1.2 over HTTP, for tests and technicians.

``soap`` (the pure SOAP 1.2 codec and WS-Security digest check), ``camera`` (state: PTZ head,
presets, clock skew, faults), ``services`` (device, media and PTZ answers as data-driven
handlers), ``scene`` (the synthetic street picture, reusable by video detectors), ``server``
(``CameraEmulator``: Starlette + uvicorn on a thread, snapshot and MJPEG endpoints).
"""
