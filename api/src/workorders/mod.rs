//! 工单 work orders: owner repairs, customer-service reports, device alarms and failed
//! maintenance items become orders; dispatch (manual, grab, round-robin, least-loaded),
//! the technician's transitions, confirmation, ratings and return visits. Sits above
//! maintenance, iot, equipment, notify, org and rbac; registers itself with iot as the
//! `RepairDesk` that turns repair requests into orders.
pub mod graphql;
pub mod model;
pub mod repo;
pub mod service;
