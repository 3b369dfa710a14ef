-- Every text column that holds a Rust enum lists exactly its codes (tests/tests/e2e/enums.rs
-- compares them): the columns written by the service alone until now get their CHECK.
ALTER TABLE notification_prefs ADD CONSTRAINT notification_prefs_category_check
    CHECK (category IN ('security', 'alarm', 'work_order', 'bill', 'attendance', 'announcement', 'system'));
ALTER TABLE notifications ADD CONSTRAINT notifications_channels_check
    CHECK (channels <@ ARRAY['push', 'sms', 'inapp']::text[]);
ALTER TABLE maintenance_plans ADD CONSTRAINT maintenance_plans_category_check
    CHECK (category IN ('elevator', 'access_door', 'water_meter', 'electricity_meter', 'gas_meter',
                        'fire_equipment', 'water_pump', 'camera', 'other'));
ALTER TABLE alarm_rules ADD CONSTRAINT alarm_rules_category_check
    CHECK (category IN ('elevator', 'access_door', 'water_meter', 'electricity_meter', 'gas_meter',
                        'fire_equipment', 'water_pump', 'camera', 'other'));
ALTER TABLE alarms ADD CONSTRAINT alarms_kind_check
    CHECK (kind IN ('threshold', 'fault', 'offline', 'jump', 'reverse_flow', 'night_flow'));
ALTER TABLE device_commands ADD CONSTRAINT device_commands_kind_check
    CHECK (kind IN ('open_door', 'elevator_to_base', 'reset'));
