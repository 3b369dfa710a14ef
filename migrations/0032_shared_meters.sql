-- 公摊 a meter of common parts (stairwell lights, lifts, pumps) whose usage each month is
-- shared over a group of houses by building area, equally, or by their own meters' usage;
-- a fee item of kind 'shared' on that meter category bills each house its share
CREATE TABLE shared_meters (
    device_id  uuid PRIMARY KEY REFERENCES devices(id),
    company_id uuid NOT NULL REFERENCES companies(id),
    project_id uuid NOT NULL REFERENCES projects(id),
    method     text NOT NULL CHECK (method IN ('area', 'equal', 'usage')),
    house_ids  uuid[] NOT NULL CHECK (cardinality(house_ids) BETWEEN 1 AND 5000),
    updated_by uuid NOT NULL REFERENCES users(id),
    updated_at timestamptz NOT NULL
);
CREATE INDEX shared_meters_project_idx ON shared_meters (project_id);
CREATE INDEX shared_meters_company_id_idx ON shared_meters (company_id);
CREATE INDEX shared_meters_updated_by_idx ON shared_meters (updated_by);
