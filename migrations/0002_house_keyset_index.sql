-- Company-wide house lists page by (company_id, id): the index returns them in order.
DROP INDEX houses_company_id_idx;
CREATE INDEX houses_company_id_idx ON houses (company_id, id);
