-- kota: always
-- Alarm acknowledgement: an operator (operator, supervisor, admin) says they have seen an
-- alarm, with a comment. Who, when (server time) and the comment are kept on the alarm row of
-- each alarm table (traffic, camera, attendance machine); the audit log keeps the action with
-- before and after. An alarm is acknowledged once: the row's ack columns are set only while
-- acked_at IS NULL. Acknowledging does not clear an alarm: the condition clears it
-- (reconcile), and a cleared alarm may still be acknowledged afterwards.

ALTER TABLE traffic_alarm
    ADD COLUMN acked_at    timestamptz,
    ADD COLUMN acked_by    text,
    ADD COLUMN acked_role  text,
    ADD COLUMN ack_comment text;

ALTER TABLE cctv_alarm
    ADD COLUMN acked_at    timestamptz,
    ADD COLUMN acked_by    text,
    ADD COLUMN acked_role  text,
    ADD COLUMN ack_comment text;

ALTER TABLE attendance_alarm
    ADD COLUMN acked_at    timestamptz,
    ADD COLUMN acked_by    text,
    ADD COLUMN acked_role  text,
    ADD COLUMN ack_comment text;

-- The alarm board lists open alarms first and unacknowledged ones; history by time exists.
CREATE INDEX traffic_alarm_unacked ON traffic_alarm (opened_at DESC) WHERE acked_at IS NULL;
CREATE INDEX cctv_alarm_unacked ON cctv_alarm (opened_at DESC) WHERE acked_at IS NULL;
CREATE INDEX attendance_alarm_unacked ON attendance_alarm (opened_at DESC) WHERE acked_at IS NULL;
