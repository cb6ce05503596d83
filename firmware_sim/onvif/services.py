"""The emulated camera's ONVIF answers: device (ver10), media (ver10) and PTZ (ver20) operations,
each a function (camera state, request element, base URL) → response element.

Element order follows the XSDs shipped with the ``onvif`` package (zeep reads sequences in
order). No I/O: ``server`` parses the envelope, checks the token and calls ``answer``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from firmware_sim.onvif.camera import (
    MAX_PRESETS,
    PAN_RANGE,
    TILT_RANGE,
    ZOOM_RANGE,
    CameraState,
    Position,
)
from firmware_sim.onvif.events import (
    create_pull_point_subscription,
    get_event_properties,
    pull_messages,
    renew,
    set_synchronization_point,
    unsubscribe,
)
from firmware_sim.onvif.soap import (
    TDS,
    TEV,
    TPTZ,
    TRT,
    TT,
    WSNT,
    SoapFault,
    child_text,
    el,
    parse_duration_s,
    sender_fault,
)

# PTZ spaces (ONVIF PTZ spec §5.7: the generic spaces)
ABS_PT = "http://www.onvif.org/ver10/tptz/PanTiltSpaces/PositionGenericSpace"
ABS_Z = "http://www.onvif.org/ver10/tptz/ZoomSpaces/PositionGenericSpace"
REL_PT = "http://www.onvif.org/ver10/tptz/PanTiltSpaces/TranslationGenericSpace"
REL_Z = "http://www.onvif.org/ver10/tptz/ZoomSpaces/TranslationGenericSpace"
VEL_PT = "http://www.onvif.org/ver10/tptz/PanTiltSpaces/VelocityGenericSpace"
VEL_Z = "http://www.onvif.org/ver10/tptz/ZoomSpaces/VelocityGenericSpace"
SPEED_PT = "http://www.onvif.org/ver10/tptz/PanTiltSpaces/GenericSpeedSpace"
SPEED_Z = "http://www.onvif.org/ver10/tptz/ZoomSpaces/ZoomGenericSpeedSpace"

PTZ_NODE = "PTZNode_1"
PTZ_CONFIG = "PTZConfig_1"
VIDEO_SOURCE = "VideoSource_1"
VIDEO_SOURCE_CONFIG = "VideoSourceConfig_1"
SERVICE_PATHS = {TDS: "/onvif/device_service", TRT: "/onvif/media_service",
                 TPTZ: "/onvif/ptz_service",
                 TEV: "/onvif/events_service"}
SENSOR = (1920, 1080)


@dataclass(frozen=True)
class ProfileSpec:
    token: str
    name: str
    encoder_token: str
    encoding: str  # tt:VideoEncoding: JPEG, MPEG4, H264
    width: int
    height: int
    fps: int
    bitrate_kbps: int
    stream_path: str


PROFILES = (
    ProfileSpec("Profile_Main", "mainStream", "VideoEncoder_Main", "H264", 1920, 1080, 25, 4096,
                "/Streaming/Channels/101"),
    ProfileSpec("Profile_Sub", "subStream", "VideoEncoder_Sub", "H264", 640, 360, 15, 512,
                "/Streaming/Channels/102"),
    ProfileSpec("Profile_JPEG", "jpegStream", "VideoEncoder_JPEG", "JPEG", 640, 360, 5, 1024,
                "/Streaming/Channels/103"),
)
PROFILE_BY_TOKEN = {p.token: p for p in PROFILES}


@dataclass(frozen=True)
class Context:
    camera: CameraState
    base_url: str  # http://127.0.0.1:P
    rtsp_url: str  # rtsp://127.0.0.1:P
    subscription_id: str | None = None  # from /onvif/subscription/{id}


Handler = Callable[[Context, ET.Element], ET.Element]


def no_profile(token: str | None) -> SoapFault:
    return sender_fault("NoProfile", f"no media profile {token!r}")


def _profile(body: ET.Element, ns: str) -> ProfileSpec:
    token = child_text(body, ns, "ProfileToken")
    if token not in PROFILE_BY_TOKEN:
        raise no_profile(token)
    return PROFILE_BY_TOKEN[token]  # type: ignore[index]


def _float_attr(node: ET.Element, name: str) -> float:
    value = node.get(name)
    if value is None:
        raise sender_fault("InvalidArgVal", f"{node.tag} without attribute {name}")
    try:
        return float(value)
    except ValueError as exc:
        raise sender_fault("InvalidArgVal", f"{name}={value!r} is not a number") from exc


def _vector(node: ET.Element | None) -> tuple[float | None, float | None, float | None]:
    """(x, y, z) of a tt:PTZVector / tt:PTZSpeed; None where the element is absent."""
    if node is None:
        return None, None, None
    pt = node.find(f"{{{TT}}}PanTilt")
    z = node.find(f"{{{TT}}}Zoom")
    x = _float_attr(pt, "x") if pt is not None else None
    y = _float_attr(pt, "y") if pt is not None else None
    return x, y, (_float_attr(z, "x") if z is not None else None)


# ------------------------------------------------------------------ device service

def _date_time(parent: ET.Element, local: str, year: int, month: int, day: int, hour: int,
               minute: int, second: int) -> None:
    node = el(parent, TT, local)
    t = el(node, TT, "Time")
    el(t, TT, "Hour", hour)
    el(t, TT, "Minute", minute)
    el(t, TT, "Second", second)
    d = el(node, TT, "Date")
    el(d, TT, "Year", year)
    el(d, TT, "Month", month)
    el(d, TT, "Day", day)


def get_system_date_and_time(ctx: Context, body: ET.Element) -> ET.Element:
    now = ctx.camera.camera_utc()
    out = el(None, TDS, "GetSystemDateAndTimeResponse")
    sdt = el(out, TDS, "SystemDateAndTime")
    el(sdt, TT, "DateTimeType", "NTP")
    el(sdt, TT, "DaylightSavings", False)
    el(el(sdt, TT, "TimeZone"), TT, "TZ", "WIB-7")
    _date_time(sdt, "UTCDateTime", now.year, now.month, now.day, now.hour, now.minute,
               now.second)
    local = now + timedelta(hours=7)  # the camera's local time: WIB
    _date_time(sdt, "LocalDateTime", local.year, local.month, local.day, local.hour,
               local.minute, local.second)
    return out


def get_services(ctx: Context, body: ET.Element) -> ET.Element:
    out = el(None, TDS, "GetServicesResponse")
    versions = {TDS: (2, 60), TRT: (2, 60), TPTZ: (2, 60)}
    for ns, path in SERVICE_PATHS.items():
        svc = el(out, TDS, "Service")
        el(svc, TDS, "Namespace", ns)
        el(svc, TDS, "XAddr", ctx.base_url + path)
        major, minor = versions.get(ns, (2, 60))
        v = el(svc, TDS, "Version")
        el(v, TT, "Major", major)
        el(v, TT, "Minor", minor)
    return out


def get_capabilities(ctx: Context, body: ET.Element) -> ET.Element:
    out = el(None, TDS, "GetCapabilitiesResponse")
    caps = el(out, TDS, "Capabilities")
    dev = el(caps, TT, "Device")
    el(dev, TT, "XAddr", ctx.base_url + SERVICE_PATHS[TDS])
    ev = el(caps, TT, "Events")
    el(ev, TT, "XAddr", ctx.base_url + SERVICE_PATHS[TEV])
    el(ev, TT, "WSSubscriptionPolicySupport", False)
    el(ev, TT, "WSPullPointSupport", True)
    el(ev, TT, "WSPausableSubscriptionManagerInterfaceSupport", False)
    media = el(caps, TT, "Media")
    el(media, TT, "XAddr", ctx.base_url + SERVICE_PATHS[TRT])
    streaming = el(media, TT, "StreamingCapabilities")
    el(streaming, TT, "RTPMulticast", False)
    el(streaming, TT, "RTP_TCP", True)
    el(streaming, TT, "RTP_RTSP_TCP", True)
    el(el(caps, TT, "PTZ"), TT, "XAddr", ctx.base_url + SERVICE_PATHS[TPTZ])
    return out


def get_device_information(ctx: Context, body: ET.Element) -> ET.Element:
    i = ctx.camera.identity
    out = el(None, TDS, "GetDeviceInformationResponse")
    for local, value in (("Manufacturer", i.manufacturer), ("Model", i.model),
                         ("FirmwareVersion", i.firmware), ("SerialNumber", i.serial),
                         ("HardwareId", i.hardware_id)):
        el(out, TDS, local, value)
    return out


def get_network_interfaces(ctx: Context, body: ET.Element) -> ET.Element:
    out = el(None, TDS, "GetNetworkInterfacesResponse")
    nic = el(out, TDS, "NetworkInterfaces", token="eth0")
    el(nic, TT, "Enabled", True)
    info = el(nic, TT, "Info")
    el(info, TT, "Name", "eth0")
    el(info, TT, "HwAddress", ctx.camera.identity.mac)
    el(info, TT, "MTU", 1500)
    ipv4 = el(nic, TT, "IPv4")
    el(ipv4, TT, "Enabled", True)
    config = el(ipv4, TT, "Config")
    manual = el(config, TT, "Manual")
    el(manual, TT, "Address", "127.0.0.1")
    el(manual, TT, "PrefixLength", 8)
    el(config, TT, "DHCP", False)
    return out


def get_scopes(ctx: Context, body: ET.Element) -> ET.Element:
    i = ctx.camera.identity
    out = el(None, TDS, "GetScopesResponse")
    for item in ("onvif://www.onvif.org/Profile/Streaming", "onvif://www.onvif.org/type/ptz",
                 f"onvif://www.onvif.org/hardware/{i.model}", f"onvif://www.onvif.org/name/{i.model}",
                 "onvif://www.onvif.org/location/country/indonesia"):
        scope = el(out, TDS, "Scopes")
        el(scope, TT, "ScopeDef", "Fixed")
        el(scope, TT, "ScopeItem", item)
    return out


def get_hostname(ctx: Context, body: ET.Element) -> ET.Element:
    out = el(None, TDS, "GetHostnameResponse")
    info = el(out, TDS, "HostnameInformation")
    el(info, TT, "FromDHCP", False)
    el(info, TT, "Name", ctx.camera.identity.hostname)
    return out


# ------------------------------------------------------------------ media service

def _space_2d(parent: ET.Element, local: str, uri: str, xr: tuple[float, float],
              yr: tuple[float, float]) -> None:
    node = el(parent, TT, local)
    el(node, TT, "URI", uri)
    for axis, (lo, hi) in (("XRange", xr), ("YRange", yr)):
        r = el(node, TT, axis)
        el(r, TT, "Min", lo)
        el(r, TT, "Max", hi)


def _space_1d(parent: ET.Element, local: str, uri: str, xr: tuple[float, float]) -> None:
    node = el(parent, TT, local)
    el(node, TT, "URI", uri)
    r = el(node, TT, "XRange")
    el(r, TT, "Min", xr[0])
    el(r, TT, "Max", xr[1])


def _ptz_configuration(parent: ET.Element, local: str, ns: str = TT) -> None:
    cfg = el(parent, ns, local, token=PTZ_CONFIG)
    el(cfg, TT, "Name", "PTZ")
    el(cfg, TT, "UseCount", len(PROFILES))
    el(cfg, TT, "NodeToken", PTZ_NODE)
    # ONVIF's schema really spells "DefaultAbsolutePantTiltPositionSpace"; clients read it so.
    el(cfg, TT, "DefaultAbsolutePantTiltPositionSpace", ABS_PT)
    el(cfg, TT, "DefaultAbsoluteZoomPositionSpace", ABS_Z)
    el(cfg, TT, "DefaultRelativePanTiltTranslationSpace", REL_PT)
    el(cfg, TT, "DefaultRelativeZoomTranslationSpace", REL_Z)
    el(cfg, TT, "DefaultContinuousPanTiltVelocitySpace", VEL_PT)
    el(cfg, TT, "DefaultContinuousZoomVelocitySpace", VEL_Z)
    speed = el(cfg, TT, "DefaultPTZSpeed")
    el(speed, TT, "PanTilt", x=1.0, y=1.0, space=SPEED_PT)
    el(speed, TT, "Zoom", x=1.0, space=SPEED_Z)
    el(cfg, TT, "DefaultPTZTimeout", "PT10S")
    _space_2d(el(cfg, TT, "PanTiltLimits"), "Range", ABS_PT, PAN_RANGE, TILT_RANGE)
    _space_1d(el(cfg, TT, "ZoomLimits"), "Range", ABS_Z, ZOOM_RANGE)


def _profile_element(parent: ET.Element, p: ProfileSpec) -> None:
    prof = el(parent, TRT, "Profiles", token=p.token, fixed=True)
    el(prof, TT, "Name", p.name)
    vsc = el(prof, TT, "VideoSourceConfiguration", token=VIDEO_SOURCE_CONFIG)
    el(vsc, TT, "Name", "VideoSourceConfig")
    el(vsc, TT, "UseCount", len(PROFILES))
    el(vsc, TT, "SourceToken", VIDEO_SOURCE)
    el(vsc, TT, "Bounds", x=0, y=0, width=SENSOR[0], height=SENSOR[1])
    vec = el(prof, TT, "VideoEncoderConfiguration", token=p.encoder_token)
    el(vec, TT, "Name", p.name)
    el(vec, TT, "UseCount", 1)
    el(vec, TT, "Encoding", p.encoding)
    res = el(vec, TT, "Resolution")
    el(res, TT, "Width", p.width)
    el(res, TT, "Height", p.height)
    el(vec, TT, "Quality", 4.0)
    rate = el(vec, TT, "RateControl")
    el(rate, TT, "FrameRateLimit", p.fps)
    el(rate, TT, "EncodingInterval", 1)
    el(rate, TT, "BitrateLimit", p.bitrate_kbps)
    if p.encoding == "H264":
        h264 = el(vec, TT, "H264")
        el(h264, TT, "GovLength", p.fps * 2)
        el(h264, TT, "H264Profile", "Main")
    mc = el(vec, TT, "Multicast")
    addr = el(mc, TT, "Address")
    el(addr, TT, "Type", "IPv4")
    el(addr, TT, "IPv4Address", "0.0.0.0")
    el(mc, TT, "Port", 0)
    el(mc, TT, "TTL", 1)
    el(mc, TT, "AutoStart", False)
    el(vec, TT, "SessionTimeout", "PT60S")
    _ptz_configuration(prof, "PTZConfiguration")


def get_profiles(ctx: Context, body: ET.Element) -> ET.Element:
    out = el(None, TRT, "GetProfilesResponse")
    for p in PROFILES:
        _profile_element(out, p)
    return out


def get_profile(ctx: Context, body: ET.Element) -> ET.Element:
    p = _profile(body, TRT)
    out = el(None, TRT, "GetProfileResponse")
    _profile_element(out, p)
    out[0].tag = f"{{{TRT}}}Profile"
    return out


def _media_uri(parent: ET.Element, uri: str) -> None:
    mu = el(parent, TRT, "MediaUri")
    el(mu, TT, "Uri", uri)
    el(mu, TT, "InvalidAfterConnect", False)
    el(mu, TT, "InvalidAfterReboot", False)
    el(mu, TT, "Timeout", "PT0S")


def get_stream_uri(ctx: Context, body: ET.Element) -> ET.Element:
    p = _profile(body, TRT)
    out = el(None, TRT, "GetStreamUriResponse")
    _media_uri(out, ctx.rtsp_url + p.stream_path)
    return out


def get_snapshot_uri(ctx: Context, body: ET.Element) -> ET.Element:
    p = _profile(body, TRT)
    out = el(None, TRT, "GetSnapshotUriResponse")
    _media_uri(out, f"{ctx.base_url}/snapshot.jpg?profile={p.token}")
    return out


def get_video_sources(ctx: Context, body: ET.Element) -> ET.Element:
    out = el(None, TRT, "GetVideoSourcesResponse")
    vs = el(out, TRT, "VideoSources", token=VIDEO_SOURCE)
    el(vs, TT, "Framerate", 25.0)
    res = el(vs, TT, "Resolution")
    el(res, TT, "Width", SENSOR[0])
    el(res, TT, "Height", SENSOR[1])
    return out


# ------------------------------------------------------------------ PTZ service

def _spaces(parent: ET.Element, local: str) -> None:
    sp = el(parent, TT, local)
    _space_2d(sp, "AbsolutePanTiltPositionSpace", ABS_PT, PAN_RANGE, TILT_RANGE)
    _space_1d(sp, "AbsoluteZoomPositionSpace", ABS_Z, ZOOM_RANGE)
    _space_2d(sp, "RelativePanTiltTranslationSpace", REL_PT, (-2.0, 2.0), (-2.0, 2.0))
    _space_1d(sp, "RelativeZoomTranslationSpace", REL_Z, (-1.0, 1.0))
    _space_2d(sp, "ContinuousPanTiltVelocitySpace", VEL_PT, (-1.0, 1.0), (-1.0, 1.0))
    _space_1d(sp, "ContinuousZoomVelocitySpace", VEL_Z, (-1.0, 1.0))
    _space_1d(sp, "PanTiltSpeedSpace", SPEED_PT, (0.0, 1.0))
    _space_1d(sp, "ZoomSpeedSpace", SPEED_Z, (0.0, 1.0))


def get_nodes(ctx: Context, body: ET.Element) -> ET.Element:
    out = el(None, TPTZ, "GetNodesResponse")
    node = el(out, TPTZ, "PTZNode", token=PTZ_NODE, FixedHomePosition=False)
    el(node, TT, "Name", "PTZ")
    _spaces(node, "SupportedPTZSpaces")
    el(node, TT, "MaximumNumberOfPresets", MAX_PRESETS)
    el(node, TT, "HomeSupported", False)
    return out


def get_configurations(ctx: Context, body: ET.Element) -> ET.Element:
    out = el(None, TPTZ, "GetConfigurationsResponse")
    _ptz_configuration(out, "PTZConfiguration", TPTZ)
    return out


def get_configuration_options(ctx: Context, body: ET.Element) -> ET.Element:
    token = child_text(body, TPTZ, "ConfigurationToken")
    if token != PTZ_CONFIG:
        raise sender_fault("NoConfig", f"no PTZ configuration {token!r}")
    out = el(None, TPTZ, "GetConfigurationOptionsResponse")
    opts = el(out, TPTZ, "PTZConfigurationOptions")
    _spaces(opts, "Spaces")
    timeout = el(opts, TT, "PTZTimeout")
    el(timeout, TT, "Min", "PT1S")
    el(timeout, TT, "Max", "PT60S")
    return out


def continuous_move(ctx: Context, body: ET.Element) -> ET.Element:
    _profile(body, TPTZ)
    x, y, z = _vector(body.find(f"{{{TPTZ}}}Velocity"))
    timeout = child_text(body, TPTZ, "Timeout")
    try:
        timeout_s = parse_duration_s(timeout) if timeout else None
    except ValueError as exc:
        raise sender_fault("InvalidArgVal", str(exc)) from exc
    cam = ctx.camera
    cam.ptz.continuous(cam.now_s(), (x or 0.0, y or 0.0, z or 0.0), timeout_s)
    return el(None, TPTZ, "ContinuousMoveResponse")


def _speed(body: ET.Element) -> float:
    x, _, z = _vector(body.find(f"{{{TPTZ}}}Speed"))
    return x if x is not None else (z if z is not None else 1.0)


def relative_move(ctx: Context, body: ET.Element) -> ET.Element:
    _profile(body, TPTZ)
    dx, dy, dz = _vector(body.find(f"{{{TPTZ}}}Translation"))
    cam = ctx.camera
    p = cam.position()
    target = Position(p.pan + (dx or 0.0), p.tilt + (dy or 0.0), p.zoom + (dz or 0.0))
    cam.ptz.go_to(cam.now_s(), target, _speed(body))
    return el(None, TPTZ, "RelativeMoveResponse")


def absolute_move(ctx: Context, body: ET.Element) -> ET.Element:
    _profile(body, TPTZ)
    x, y, z = _vector(body.find(f"{{{TPTZ}}}Position"))
    cam = ctx.camera
    p = cam.position()
    target = Position(p.pan if x is None else x, p.tilt if y is None else y,
                      p.zoom if z is None else z)
    cam.ptz.go_to(cam.now_s(), target, _speed(body))
    return el(None, TPTZ, "AbsoluteMoveResponse")


def stop(ctx: Context, body: ET.Element) -> ET.Element:
    _profile(body, TPTZ)
    pan_tilt = child_text(body, TPTZ, "PanTilt")
    zoom = child_text(body, TPTZ, "Zoom")
    cam = ctx.camera
    cam.ptz.stop(cam.now_s(), pan_tilt != "false", zoom != "false")
    return el(None, TPTZ, "StopResponse")


def _ptz_vector(parent: ET.Element, ns: str, local: str, p: Position) -> None:
    vec = el(parent, ns, local)
    el(vec, TT, "PanTilt", x=p.pan, y=p.tilt, space=ABS_PT)
    el(vec, TT, "Zoom", x=p.zoom, space=ABS_Z)


def get_status(ctx: Context, body: ET.Element) -> ET.Element:
    _profile(body, TPTZ)
    cam = ctx.camera
    p = cam.position()
    pt_moving, z_moving = cam.ptz.moving
    out = el(None, TPTZ, "GetStatusResponse")
    status = el(out, TPTZ, "PTZStatus")
    _ptz_vector(status, TT, "Position", p)
    ms = el(status, TT, "MoveStatus")
    el(ms, TT, "PanTilt", "MOVING" if pt_moving else "IDLE")
    el(ms, TT, "Zoom", "MOVING" if z_moving else "IDLE")
    el(status, TT, "UtcTime", cam.camera_utc().strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    return out


def get_presets(ctx: Context, body: ET.Element) -> ET.Element:
    _profile(body, TPTZ)
    out = el(None, TPTZ, "GetPresetsResponse")
    for preset in ctx.camera.presets.values():
        node = el(out, TPTZ, "Preset", token=preset.token)
        el(node, TT, "Name", preset.name)
        _ptz_vector(node, TT, "PTZPosition", preset.position)
    return out


def set_preset(ctx: Context, body: ET.Element) -> ET.Element:
    _profile(body, TPTZ)
    name = child_text(body, TPTZ, "PresetName")
    token = child_text(body, TPTZ, "PresetToken") or None
    try:
        preset = ctx.camera.set_preset(name, token)
    except KeyError as exc:
        raise sender_fault("NoToken", f"no preset {token!r}") from exc
    except OverflowError as exc:
        raise SoapFault("Receiver", "TooManyPresets", str(exc)) from exc
    out = el(None, TPTZ, "SetPresetResponse")
    el(out, TPTZ, "PresetToken", preset.token)
    return out


def _preset_token(ctx: Context, body: ET.Element) -> str:
    _profile(body, TPTZ)
    token = child_text(body, TPTZ, "PresetToken")
    if token not in ctx.camera.presets:
        raise sender_fault("NoToken", f"no preset {token!r}")
    return token  # type: ignore[return-value]


def goto_preset(ctx: Context, body: ET.Element) -> ET.Element:
    preset = ctx.camera.presets[_preset_token(ctx, body)]
    cam = ctx.camera
    cam.ptz.go_to(cam.now_s(), preset.position, _speed(body))
    return el(None, TPTZ, "GotoPresetResponse")


def remove_preset(ctx: Context, body: ET.Element) -> ET.Element:
    del ctx.camera.presets[_preset_token(ctx, body)]
    return el(None, TPTZ, "RemovePresetResponse")


# ------------------------------------------------------------------ the operation table

NO_AUTH = frozenset({(TDS, "GetSystemDateAndTime")})  # clients read the clock before signing

OPERATIONS: dict[tuple[str, str], Handler] = {
    (TDS, "GetSystemDateAndTime"): get_system_date_and_time,
    (TDS, "GetServices"): get_services,
    (TDS, "GetCapabilities"): get_capabilities,
    (TDS, "GetDeviceInformation"): get_device_information,
    (TDS, "GetNetworkInterfaces"): get_network_interfaces,
    (TDS, "GetScopes"): get_scopes,
    (TDS, "GetHostname"): get_hostname,
    (TRT, "GetProfiles"): get_profiles,
    (TRT, "GetProfile"): get_profile,
    (TRT, "GetStreamUri"): get_stream_uri,
    (TRT, "GetSnapshotUri"): get_snapshot_uri,
    (TRT, "GetVideoSources"): get_video_sources,
    (TPTZ, "GetNodes"): get_nodes,
    (TPTZ, "GetConfigurations"): get_configurations,
    (TPTZ, "GetConfigurationOptions"): get_configuration_options,
    (TPTZ, "ContinuousMove"): continuous_move,
    (TPTZ, "RelativeMove"): relative_move,
    (TPTZ, "AbsoluteMove"): absolute_move,
    (TPTZ, "Stop"): stop,
    (TPTZ, "GetStatus"): get_status,
    (TPTZ, "GetPresets"): get_presets,
    (TPTZ, "SetPreset"): set_preset,
    (TPTZ, "GotoPreset"): goto_preset,
    (TPTZ, "RemovePreset"): remove_preset,
    (TEV, "GetEventProperties"): get_event_properties,
    (TEV, "CreatePullPointSubscription"): create_pull_point_subscription,
    (TEV, "PullMessages"): pull_messages,
    (TEV, "SetSynchronizationPoint"): set_synchronization_point,
    (WSNT, "Renew"): renew,
    (WSNT, "Unsubscribe"): unsubscribe,
}
