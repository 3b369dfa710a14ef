-- A bill's lines are read by bill (the owner's bills, a bill's detail, a run's regeneration):
-- the unique index on (bill, fee item) covers fee lines only.
CREATE INDEX bill_lines_bill_idx ON bill_lines (bill_id, position);
