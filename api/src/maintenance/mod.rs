//! 维修与保养, 巡检: maintenance plans, the tasks the scheduler creates from them and the
//! records that complete them (`plans`); patrol routes with their scheduled patrols and
//! checkpoint scans (`patrols`). Sits above iot, equipment, notify, org and rbac.
pub mod patrols;
pub mod plans;
