//! The options of the generator source (`docs/connectors/generator.md` shows this table).

use crate::generator::GeneratorKind;
use crate::options::{OptionValue, OptionsError, Validate};

/// Most events per second a generator source emits.
const MAX_RATE: f64 = 10_000_000.0;

connector_options! {
    /// `CREATE SOURCE ... WITH (connector = 'generator', ...)`.
    pub struct GeneratorOptions("generator source", connector "generator" | "datagen") {
        /// Which security log the source produces. A source declares any of that kind's
        /// event fields as columns.
        #[option("kind")]
        pub kind: GeneratorKind = required,
        /// Events per second, more than 0 and at most 10000000.
        #[option("rate")]
        pub rate: f64 = default("100"),
        /// The seed of the events' randomness: the same kind, seed, rate and creation time
        /// give the same events.
        #[option("seed")]
        pub seed: u64 = default("42"),
    }
}

impl Validate for GeneratorOptions {
    fn validate(&mut self) -> Result<(), OptionsError> {
        if !(self.rate > 0.0 && self.rate <= MAX_RATE) {
            return Err(OptionsError::Invalid {
                option: "rate",
                value: self.rate.to_string(),
                expected: format!("more than 0 and at most {MAX_RATE} events per second"),
            });
        }
        Ok(())
    }
}

/// `auth`, `firewall`, `endpoint` or `web` (ASCII case-insensitive).
impl OptionValue for GeneratorKind {
    const TYPE: &'static str = "'auth', 'firewall', 'endpoint' or 'web'";

    fn parse(text: &str) -> Result<Self, String> {
        text.parse().map_err(|_| Self::TYPE.to_string())
    }
}
