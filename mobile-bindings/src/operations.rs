//! The operations the apps may send, generated from the persisted-operation manifests.

include!(concat!(env!("OUT_DIR"), "/operations.rs"));

/// What an operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum OperationKind {
    Query,
    Mutation,
    Subscription,
}

/// Which app a client is: its tokens are issued to it, and in production it may send only
/// its manifest's operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum App {
    Owner,
    Staff,
}

impl App {
    pub fn code(self) -> &'static str {
        match self {
            App::Owner => "owner",
            App::Staff => "staff",
        }
    }

    /// The GraphQL `ClientApp` value.
    pub fn graphql(self) -> &'static str {
        match self {
            App::Owner => "OWNER",
            App::Staff => "STAFF",
        }
    }
}

impl Operation {
    /// Whether `app`'s manifest holds it.
    pub fn belongs_to(self, app: App) -> bool {
        self.apps().contains(&app.code())
    }

    /// Whether it may wait in the offline queue: a mutation that takes a clientMutationId
    /// (so a resend applies once).
    pub fn queueable(self) -> bool {
        self.kind() == OperationKind::Mutation && self.variables().iter().any(|(n, _)| *n == "clientMutationId")
    }

    /// The GraphQL type of a variable.
    pub fn variable(self, name: &str) -> Option<&'static str> {
        self.variables().iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
    }
}

/// An operation's description for the app (UniFFI cannot export methods of enums).
#[derive(Debug, Clone, uniffi::Record)]
pub struct OperationInfo {
    pub name: String,
    pub id: String,
    pub kind: OperationKind,
    /// `name: Type` of each variable
    pub variables: Vec<String>,
    pub queueable: bool,
}

#[uniffi::export]
pub fn operation_info(operation: Operation) -> OperationInfo {
    OperationInfo {
        name: operation.name().to_owned(),
        id: operation.id().to_owned(),
        kind: operation.kind(),
        variables: operation.variables().iter().map(|(n, t)| format!("{n}: {t}")).collect(),
        queueable: operation.queueable(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_from_the_manifests() {
        assert!(Operation::ALL.len() > 60);
        let punch = Operation::Punch;
        assert_eq!(punch.kind(), OperationKind::Mutation);
        assert!(punch.queueable() && punch.belongs_to(App::Staff) && !punch.belongs_to(App::Owner));
        assert_eq!(punch.variable("at"), Some("DateTime"));
        assert_eq!(punch.variable("lat"), Some("Float!"));
        assert_eq!(punch.id().len(), 64);
        assert!(Operation::SignIn.belongs_to(App::Owner) && Operation::SignIn.belongs_to(App::Staff));
        assert!(!Operation::MyHouses.queueable());
        assert_eq!(Operation::ReportRepair.variable("photos"), Some("[String!]!"));
    }
}
