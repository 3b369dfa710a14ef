-- a reminder by hand at most once a Shanghai day per bill, also when two people send it
ALTER TABLE bill_reminders
    ADD COLUMN sent_on date GENERATED ALWAYS AS ((sent_at AT TIME ZONE 'Asia/Shanghai')::date) STORED;
CREATE UNIQUE INDEX bill_reminders_by_hand_key ON bill_reminders (bill_id, sent_on) WHERE step = 0;
