"""The emulated camera's event service (ONVIF Core §9, ver10 pull point): pull-point
subscriptions with a termination time, a queue of property events per subscription, and the
tamper topics raised by the image faults.

No I/O and no clock of its own: times come in as arguments; ``server`` waits for PullMessages'
Timeout, this module answers.
"""

from __future__ import annotations

import secrets
import xml.etree.ElementTree as ET
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from firmware_sim.onvif.soap import (
    TEV,
    TNS1,
    TT,
    WSA,
    WSNT,
    child_text,
    el,
    parse_created,
    parse_duration_s,
    sender_fault,
)

if TYPE_CHECKING:
    from firmware_sim.onvif.services import Context

WSTOP = "http://docs.oasis-open.org/wsn/t-1"
CONCRETE_SET = "http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet"
DEFAULT_TERMINATION_S = 60.0
MAX_TERMINATION_S = 3600.0
MAX_PULL_TIMEOUT_S = 60.0
MAX_QUEUED = 100  # per subscription; the oldest events are dropped beyond this
VIDEO_SOURCE_CONFIG = "VideoSourceConfig_1"

# Fault → tamper topic (ONVIF Core 2.60 Appendix A.5, image tampering); State true while on.
TAMPER_TOPICS = {
    "moved": "tns1:VideoSource/GlobalSceneChange/ImagingService",
    "blurred": "tns1:VideoSource/ImageTooBlurry/ImagingService",
    "covered": "tns1:VideoSource/ImageTooDark/ImagingService",
}


@dataclass(frozen=True)
class Event:
    topic: str
    utc: datetime
    state: bool
    operation: str  # Initialized, Changed


@dataclass
class Subscription:
    sid: str
    terminates: datetime
    queue: deque[Event] = field(default_factory=lambda: deque(maxlen=MAX_QUEUED))


class EventBroker:
    """Subscriptions and the current tamper states; guard with the camera's lock."""

    def __init__(self) -> None:
        self.subscriptions: dict[str, Subscription] = {}
        self.states = {topic: False for topic in TAMPER_TOPICS.values()}

    def expire(self, now: datetime) -> None:
        for sid in [s.sid for s in self.subscriptions.values() if s.terminates <= now]:
            del self.subscriptions[sid]

    def subscribe(self, now: datetime, termination: datetime) -> Subscription:
        self.expire(now)
        sub = Subscription(secrets.token_hex(8), termination)
        for topic, state in self.states.items():  # ONVIF Core §9.2.1: initial property values
            sub.queue.append(Event(topic, now, state, "Initialized"))
        self.subscriptions[sub.sid] = sub
        return sub

    def publish(self, topic: str, state: bool, now: datetime) -> None:
        if self.states.get(topic) == state:
            return
        self.states[topic] = state
        for sub in self.subscriptions.values():
            sub.queue.append(Event(topic, now, state, "Changed"))

    def get(self, sid: str | None, now: datetime) -> Subscription:
        self.expire(now)
        if sid is None or sid not in self.subscriptions:
            raise sender_fault("InvalidArgVal", f"no subscription {sid!r} (expired or unknown)")
        return self.subscriptions[sid]

    def has_events(self, sid: str | None) -> bool:
        sub = self.subscriptions.get(sid or "")
        return sub is None or bool(sub.queue)  # an unknown one answers at once (a fault)


def termination_time(value: str | None, now: datetime) -> datetime:
    """wsnt:AbsoluteOrRelativeTimeType: a duration (``PT60S``) or an absolute dateTime."""
    if not value:
        return now + timedelta(seconds=DEFAULT_TERMINATION_S)
    try:
        if value.startswith("P"):
            when = now + timedelta(seconds=parse_duration_s(value))
        else:
            when = parse_created(value)
    except ValueError as exc:
        raise sender_fault("InvalidArgVal", f"bad termination time {value!r}") from exc
    if when <= now:
        raise sender_fault("InvalidArgVal", f"termination time {value!r} is in the past")
    return min(when, now + timedelta(seconds=MAX_TERMINATION_S))


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def pull_timeout_s(body: ET.Element) -> float:
    text = child_text(body, TEV, "Timeout")
    try:
        return min(MAX_PULL_TIMEOUT_S, parse_duration_s(text)) if text else 0.0
    except ValueError as exc:
        raise sender_fault("InvalidArgVal", str(exc)) from exc


# ------------------------------------------------------------------ operations

def create_pull_point_subscription(ctx: Context, body: ET.Element) -> ET.Element:
    now = ctx.camera.camera_utc()
    until = termination_time(child_text(body, TEV, "InitialTerminationTime"), now)
    sub = ctx.camera.events.subscribe(now, until)
    out = el(None, TEV, "CreatePullPointSubscriptionResponse")
    ref = el(out, TEV, "SubscriptionReference")
    el(ref, WSA, "Address", f"{ctx.base_url}/onvif/subscription/{sub.sid}")
    el(out, WSNT, "CurrentTime", _iso(now))
    el(out, WSNT, "TerminationTime", _iso(sub.terminates))
    return out


def pull_messages(ctx: Context, body: ET.Element) -> ET.Element:
    now = ctx.camera.camera_utc()
    sub = ctx.camera.events.get(ctx.subscription_id, now)
    limit_text = child_text(body, TEV, "MessageLimit")
    try:
        limit = max(1, int(limit_text)) if limit_text else 1
    except ValueError as exc:
        raise sender_fault("InvalidArgVal", f"MessageLimit {limit_text!r}") from exc
    out = el(None, TEV, "PullMessagesResponse")
    el(out, TEV, "CurrentTime", _iso(now))
    el(out, TEV, "TerminationTime", _iso(sub.terminates))
    for _ in range(min(limit, len(sub.queue))):
        event = sub.queue.popleft()
        holder = el(out, WSNT, "NotificationMessage")
        el(holder, WSNT, "Topic", event.topic, Dialect=CONCRETE_SET)
        msg = el(el(holder, WSNT, "Message"), TT, "Message",
                 UtcTime=event.utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                 PropertyOperation=event.operation)
        el(el(msg, TT, "Source"), TT, "SimpleItem", Name="VideoSourceConfigurationToken",
           Value=VIDEO_SOURCE_CONFIG)
        el(el(msg, TT, "Data"), TT, "SimpleItem", Name="State", Value=event.state)
    return out


def renew(ctx: Context, body: ET.Element) -> ET.Element:
    now = ctx.camera.camera_utc()
    sub = ctx.camera.events.get(ctx.subscription_id, now)
    sub.terminates = termination_time(child_text(body, WSNT, "TerminationTime"), now)
    out = el(None, WSNT, "RenewResponse")
    el(out, WSNT, "TerminationTime", _iso(sub.terminates))
    el(out, WSNT, "CurrentTime", _iso(now))
    return out


def unsubscribe(ctx: Context, body: ET.Element) -> ET.Element:
    sub = ctx.camera.events.get(ctx.subscription_id, ctx.camera.camera_utc())
    del ctx.camera.events.subscriptions[sub.sid]
    return el(None, WSNT, "UnsubscribeResponse")


def set_synchronization_point(ctx: Context, body: ET.Element) -> ET.Element:
    now = ctx.camera.camera_utc()
    sub = ctx.camera.events.get(ctx.subscription_id, now)
    for topic, state in ctx.camera.events.states.items():
        sub.queue.append(Event(topic, now, state, "Initialized"))
    return el(None, TEV, "SetSynchronizationPointResponse")


def get_event_properties(ctx: Context, body: ET.Element) -> ET.Element:
    out = el(None, TEV, "GetEventPropertiesResponse")
    el(out, TEV, "TopicNamespaceLocation",
       "http://www.onvif.org/onvif/ver10/topics/topicns.xml")
    el(out, WSNT, "FixedTopicSet", True)
    topic_set = el(out, WSTOP, "TopicSet")
    video_source = el(topic_set, TNS1, "VideoSource")
    for topic in TAMPER_TOPICS.values():
        middle = el(video_source, TNS1, topic.split("/")[1])
        imaging = el(middle, TNS1, "ImagingService", **{f"{{{WSTOP}}}topic": True})
        desc = el(imaging, TT, "MessageDescription", IsProperty=True)
        el(el(desc, TT, "Source"), TT, "SimpleItemDescription",
           Name="VideoSourceConfigurationToken", Type="tt:ReferenceToken")
        el(el(desc, TT, "Data"), TT, "SimpleItemDescription", Name="State", Type="xs:boolean")
    el(out, WSNT, "TopicExpressionDialect",
       "http://docs.oasis-open.org/wsn/t-1/TopicExpression/Concrete")
    el(out, WSNT, "TopicExpressionDialect", CONCRETE_SET)
    el(out, TEV, "MessageContentFilterDialect",
       "http://www.onvif.org/ver10/tev/messageContentFilter/ItemFilter")
    el(out, TEV, "MessageContentSchemaLocation", "http://www.onvif.org/onvif/ver10/schema/onvif.xsd")
    return out
