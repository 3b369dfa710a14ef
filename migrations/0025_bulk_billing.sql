-- A bill run writes 50,000 bills and 200,000 lines in one transaction; every foreign key
-- is a trigger per row. The keys that repeat what another one already holds go: a line's
-- company and fee item follow from its bill (the run writes them from rows it read; fee
-- items are never deleted), a bill's company and building from its project and house.
ALTER TABLE bill_lines DROP CONSTRAINT bill_lines_company_id_fkey;
ALTER TABLE bill_lines DROP CONSTRAINT bill_lines_fee_item_id_fkey;
ALTER TABLE bills DROP CONSTRAINT bills_company_id_fkey;
ALTER TABLE bills DROP CONSTRAINT bills_building_id_fkey;
