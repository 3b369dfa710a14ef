-- 预存 a house's prepaid balance: topped up at the counter, drawn on automatically for
-- the house's unpaid bills (oldest first) as payments of method 'prepaid'; every change is
-- an entry with the balance after it (balance = top-ups − deductions)
CREATE TABLE prepaid_accounts (
    house_id   uuid PRIMARY KEY REFERENCES houses(id),
    company_id uuid NOT NULL REFERENCES companies(id),
    project_id uuid NOT NULL REFERENCES projects(id),
    balance    numeric(14, 2) NOT NULL CHECK (balance >= 0),
    updated_at timestamptz NOT NULL
);
CREATE INDEX prepaid_accounts_company_id_idx ON prepaid_accounts (company_id);
CREATE INDEX prepaid_accounts_project_id_idx ON prepaid_accounts (project_id) WHERE balance > 0;

CREATE TABLE prepaid_entries (
    id            uuid PRIMARY KEY,
    company_id    uuid NOT NULL REFERENCES companies(id),
    project_id    uuid NOT NULL REFERENCES projects(id),
    house_id      uuid NOT NULL REFERENCES prepaid_accounts(house_id),
    kind          text NOT NULL CHECK (kind IN ('top_up', 'deduction')),
    amount        numeric(14, 2) NOT NULL CHECK (amount > 0),
    balance_after numeric(14, 2) NOT NULL CHECK (balance_after >= 0),
    -- a top-up: how it was paid, its reference and receipt
    method        text CHECK (method IN ('cash', 'bank_transfer', 'pos')),
    reference     text,
    receipt_no    text,
    -- a deduction: the payment it made
    payment_id    uuid REFERENCES payments(id),
    by_user       uuid REFERENCES users(id),
    at            timestamptz NOT NULL,
    CHECK ((kind = 'top_up') = (method IS NOT NULL AND receipt_no IS NOT NULL)),
    CHECK ((kind = 'deduction') = (payment_id IS NOT NULL))
);
CREATE INDEX prepaid_entries_house_idx ON prepaid_entries (house_id, at DESC, id DESC);
CREATE INDEX prepaid_entries_company_id_idx ON prepaid_entries (company_id);
CREATE INDEX prepaid_entries_project_id_idx ON prepaid_entries (project_id);
CREATE INDEX prepaid_entries_payment_id_idx ON prepaid_entries (payment_id);
CREATE INDEX prepaid_entries_by_user_idx ON prepaid_entries (by_user);
CREATE UNIQUE INDEX prepaid_entries_receipt_key ON prepaid_entries (company_id, receipt_no);

ALTER TABLE payments DROP CONSTRAINT payments_method_check;
ALTER TABLE payments ADD CONSTRAINT payments_method_check
    CHECK (method IN ('cash', 'bank_transfer', 'pos', 'wechat', 'alipay', 'prepaid'));
