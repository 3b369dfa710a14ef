-- 线上支付 orders sent to WeChat Pay or Alipay for one payer's bills, settled by the
-- provider's signed notification (or by asking the provider), and refunds approved
-- through the approval kit.
CREATE TABLE pay_orders (
    id             uuid PRIMARY KEY,
    company_id     uuid NOT NULL REFERENCES companies(id),
    project_id     uuid NOT NULL REFERENCES projects(id),
    payer_id       uuid NOT NULL REFERENCES owners(id),
    created_by     uuid NOT NULL REFERENCES users(id),
    provider       text NOT NULL CHECK (provider IN ('wechat', 'alipay')),
    channel        text NOT NULL CHECK (channel IN ('app', 'jsapi')),
    -- the number the provider knows the order by (32 hex characters)
    out_trade_no   text NOT NULL,
    bill_ids       uuid[] NOT NULL,
    amount         numeric(14, 2) NOT NULL CHECK (amount > 0),
    -- disputed: the provider reported another amount; finance looks at it
    status         text NOT NULL CHECK (status IN ('pending', 'paid', 'closed', 'disputed')),
    transaction_id text,
    payment_id     uuid REFERENCES payments(id),
    -- what the app hands to the provider's SDK (kept so a retried request gets it again)
    prepay         jsonb NOT NULL DEFAULT '{}',
    expires_at     timestamptz NOT NULL,
    checked_at     timestamptz,
    created_at     timestamptz NOT NULL,
    paid_at        timestamptz,
    CONSTRAINT pay_orders_out_trade_no_key UNIQUE (out_trade_no),
    CONSTRAINT pay_orders_transaction_key UNIQUE (provider, transaction_id),
    -- a paid order has its payment; a disputed one may (the money received, all unapplied)
    CHECK (status NOT IN ('pending', 'closed') OR payment_id IS NULL),
    CHECK (status <> 'paid' OR payment_id IS NOT NULL)
);
CREATE INDEX pay_orders_company_id_idx ON pay_orders (company_id);
CREATE INDEX pay_orders_project_id_idx ON pay_orders (project_id);
CREATE INDEX pay_orders_payer_id_idx ON pay_orders (payer_id, created_at);
CREATE INDEX pay_orders_created_by_idx ON pay_orders (created_by);
CREATE INDEX pay_orders_payment_id_idx ON pay_orders (payment_id);
CREATE INDEX pay_orders_pending_idx ON pay_orders (created_at) WHERE status = 'pending';
CREATE INDEX pay_orders_bill_ids_idx ON pay_orders USING gin (bill_ids) WHERE status = 'pending';

-- money a payment brought that no bill needed any more (the bills were settled another
-- way while the owner paid), and what was paid back
ALTER TABLE payments
    ADD COLUMN unapplied numeric(14, 2) NOT NULL DEFAULT 0 CHECK (unapplied >= 0),
    ADD COLUMN refunded numeric(14, 2) NOT NULL DEFAULT 0,
    ADD CONSTRAINT payments_refunded_range CHECK (refunded >= 0 AND refunded <= amount);
-- one payment per provider transaction
CREATE UNIQUE INDEX payments_provider_reference_key ON payments (method, reference)
    WHERE method IN ('wechat', 'alipay');

-- 退款 a refund of (part of) a payment, approved by someone other than who asked; online
-- payments are paid back through their provider, offline ones by hand
CREATE TABLE refunds (
    id                 uuid PRIMARY KEY,
    company_id         uuid NOT NULL REFERENCES companies(id),
    project_id         uuid NOT NULL REFERENCES projects(id),
    payment_id         uuid NOT NULL REFERENCES payments(id),
    approval_id        uuid NOT NULL REFERENCES approvals(id),
    out_refund_no      text NOT NULL,
    amount             numeric(14, 2) NOT NULL CHECK (amount > 0),
    reason             text NOT NULL,
    status             text NOT NULL CHECK (status IN ('processing', 'succeeded', 'failed')),
    provider_refund_id text,
    -- when the provider first answered the refund request (then it is only asked about)
    submitted_at       timestamptz,
    attempts           integer NOT NULL DEFAULT 0,
    last_error         text,
    created_at         timestamptz NOT NULL,
    done_at            timestamptz,
    CONSTRAINT refunds_out_refund_no_key UNIQUE (out_refund_no),
    CONSTRAINT refunds_approval_key UNIQUE (approval_id)
);
CREATE INDEX refunds_company_id_idx ON refunds (company_id);
CREATE INDEX refunds_project_id_idx ON refunds (project_id);
CREATE INDEX refunds_payment_id_idx ON refunds (payment_id);
CREATE INDEX refunds_processing_idx ON refunds (created_at) WHERE status = 'processing';

ALTER TABLE approvals DROP CONSTRAINT approvals_kind_check;
ALTER TABLE approvals ADD CONSTRAINT approvals_kind_check CHECK (kind IN ('late_fee_waiver', 'refund'));
