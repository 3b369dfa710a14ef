-- A bill run writes 200,000 lines in one transaction, and the line → bill foreign key
-- checked them one by one (an index probe and a key-share lock on a bill the same
-- transaction wrote, each). The same rule is now checked once per statement over the rows
-- it wrote. Bills are never deleted; a delete of a bill that has lines is refused, as the
-- key would have refused it (its ON DELETE CASCADE never ran).
ALTER TABLE bill_lines DROP CONSTRAINT bill_lines_bill_id_fkey;

CREATE FUNCTION bill_lines_have_bills() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM written w WHERE NOT EXISTS (SELECT 1 FROM bills b WHERE b.id = w.bill_id)) THEN
        RAISE foreign_key_violation USING MESSAGE = 'a bill line names no bill',
            CONSTRAINT = 'bill_lines_bill_id_fkey', TABLE = 'bill_lines';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER bill_lines_have_bills_on_insert AFTER INSERT ON bill_lines
    REFERENCING NEW TABLE AS written FOR EACH STATEMENT EXECUTE FUNCTION bill_lines_have_bills();
CREATE TRIGGER bill_lines_have_bills_on_update AFTER UPDATE ON bill_lines
    REFERENCING NEW TABLE AS written FOR EACH STATEMENT EXECUTE FUNCTION bill_lines_have_bills();

CREATE FUNCTION bills_keep_their_lines() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM removed r JOIN bill_lines l ON l.bill_id = r.id) THEN
        RAISE foreign_key_violation USING MESSAGE = 'a bill with lines cannot be removed',
            CONSTRAINT = 'bill_lines_bill_id_fkey', TABLE = 'bills';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER bills_keep_their_lines AFTER DELETE ON bills
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION bills_keep_their_lines();
