//! The closed sets of values the directory stores as text.

macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum!(
    /// Lifecycle of an end-user.
    UserStatus {
        Active => "active",
        Unconfirmed => "unconfirmed",
        Deactivated => "deactivated",
        Guest => "guest",
        Deleted => "deleted",
        Merged => "merged",
        Erased => "erased",
    }
);

impl UserStatus {
    /// Retired users no longer hold their external id or e-mail and are hidden from lists
    /// unless asked for. The one list in Rust; the migrations' partial unique indexes spell
    /// the same statuses in SQL and must match it.
    pub const RETIRED: [UserStatus; 3] =
        [UserStatus::Deleted, UserStatus::Merged, UserStatus::Erased];

    /// [`UserStatus::RETIRED`] as stored, for queries.
    pub fn retired_texts() -> [&'static str; 3] {
        UserStatus::RETIRED.map(UserStatus::as_str)
    }

    pub fn is_retired(self) -> bool {
        UserStatus::RETIRED.contains(&self)
    }
}

text_enum!(
    /// A customer's validity, after OTOBO.
    CustomerStatus {
        Active => "active",
        Inactive => "inactive",
        InactiveTemporarily => "inactive_temporarily",
    }
);

text_enum!(
    /// Who may use the vendor's chat.
    ChatAccess {
        Anyone => "anyone",
        Identified => "identified",
        Confirmed => "confirmed",
    }
);

text_enum!(
    /// Channels through which end-users reach the vendor.
    IdentitySource {
        Email => "email",
        Widget => "widget",
        Slack => "slack",
        MsTeams => "msteams",
        Csv => "csv",
    }
);
