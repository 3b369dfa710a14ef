-- Which app a session was opened in (owner app, staff app, the managers' playground):
-- access tokens carry it, and in production the apps may send only the operations of
-- their own manifest (schema/persisted/). Sessions opened before this are filled in with
-- the account's own app (staff: a username or a role other than owner). The column stays
-- nullable (NULL: the account's own app) so the previous release, which does not write it,
-- keeps signing people in while a rolling upgrade runs; a later release may require it.
ALTER TABLE refresh_tokens ADD COLUMN app text;
UPDATE refresh_tokens r
   SET app = CASE WHEN u.username IS NOT NULL OR EXISTS (
                     SELECT 1 FROM user_roles ur JOIN roles ro ON ro.id = ur.role_id
                      WHERE ur.user_id = u.id AND ro.code <> 'owner')
                  THEN 'staff' ELSE 'owner' END
  FROM users u WHERE u.id = r.user_id;
ALTER TABLE refresh_tokens
    ADD CONSTRAINT refresh_tokens_app_check CHECK (app IN ('owner', 'staff', 'playground'));
