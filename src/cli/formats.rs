//! The CLI's spelling of the output formats and thresholds.
//!
//! Lower layers (`report`, `audit`, `plan`, `verify`, `fleet`) have plain
//! enums and know nothing of clap; each enum here derives `clap::ValueEnum`
//! (its doc comments are the `--help` text) and converts into the layer's
//! own, variant by variant, so the two cannot drift apart unnoticed: a
//! variant missing on either side does not compile.

/// Declare a `ValueEnum` mirror of a lower layer's enum, with `From`.
macro_rules! cli_enum {
    ($(#[doc = $doc:literal])* $name:ident => $target:ty { $($(#[doc = $vdoc:literal])* $v:ident),+ $(,)? }) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
        pub enum $name {
            $($(#[doc = $vdoc])* $v),+
        }

        impl From<$name> for $target {
            fn from(f: $name) -> Self {
                match f {
                    $($name::$v => Self::$v),+
                }
            }
        }
    };
}

cli_enum! {
    /// Machine-readable formats shared by every command.
    DataFormat => crate::report::DataFormat {
        /// JSON, pretty-printed.
        Json,
        /// YAML.
        Yaml,
    }
}

cli_enum! {
    /// `--fail-on` threshold.
    FailOn => crate::rules::FailOn {
        /// Never fail.
        Never,
        /// Fail on warning or worse.
        Warning,
        /// Fail on error or worse.
        Error,
        /// Fail on blockers only.
        Blocker,
    }
}

cli_enum! {
    /// Output formats of `cgmig audit`.
    AuditFormat => crate::audit::AuditFormat {
        /// Human tables.
        Table,
        /// Versioned JSON (`schema: cgmig.audit/v1`).
        Json,
        /// The same document as YAML.
        Yaml,
        /// Markdown for tickets and wikis.
        Markdown,
        /// node_exporter textfile-collector format.
        Prometheus,
    }
}

cli_enum! {
    /// Output formats of `cgmig plan`.
    PlanFormat => crate::plan::PlanFormat {
        /// Human dry-run report with tables.
        Table,
        /// The same report in Markdown.
        Markdown,
        /// Versioned JSON (`schema: cgmig.plan/v1`), what `apply` reads.
        Json,
        /// The same document as YAML.
        Yaml,
        /// Graphviz: v1 hierarchies beside the v2 tree, with origin edges.
        Dot,
    }
}

cli_enum! {
    /// Output formats of `cgmig verify`.
    VerifyFormat => crate::verify::VerifyFormat {
        /// Human table.
        Table,
        /// JSON (`cgmig.verify/v1`).
        Json,
        /// Prometheus textfile-collector metrics.
        Prometheus,
    }
}

cli_enum! {
    /// Output formats of `cgmig fleet`.
    FleetFormat => crate::fleet::FleetFormat {
        /// Human tables.
        Table,
        /// Markdown for tickets and wikis.
        Markdown,
        /// Versioned JSON (`schema: cgmig.fleet/v1`).
        Json,
        /// node_exporter textfile-collector format.
        Prometheus,
        /// A self-contained HTML page with charts.
        Html,
    }
}

cli_enum! {
    /// `--min-severity`: the least severe finding a human report lists.
    MinSeverity => crate::rules::Severity {
        /// Every finding.
        Info,
        /// Warnings and worse.
        Warning,
        /// Errors and blockers.
        Error,
        /// Blockers only.
        Blocker,
    }
}
