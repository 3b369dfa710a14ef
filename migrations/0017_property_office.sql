-- 物业服务中心 what owners see of their estate's property office: a service phone, and the
-- project's manager and customer-service team with their phones only when the company
-- chooses to publish them.
ALTER TABLE projects ADD COLUMN service_phone text NOT NULL DEFAULT '';
ALTER TABLE projects ADD COLUMN publish_contacts boolean NOT NULL DEFAULT false;
