//! librdkafka client configurations shared by the Kafka source, the sink and the sink's
//! readback, and [`kafka_error`]: a client error with the SQLSTATE of its kind.

use std::collections::BTreeMap;

use rampart_repr::{Error, SqlState};
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// A client configuration holding `props`.
pub(crate) fn client_config(props: &BTreeMap<String, String>) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    for (k, v) in props {
        cfg.set(k, v);
    }
    cfg
}

/// Configuration of a consumer that `assign`s partitions itself and never commits: the
/// user's `props`, a group id `rampart-{name}-{pid}` unless one is given (librdkafka needs
/// one to `assign`; no group is joined, so any unique id does), and fetches that wait at
/// most 10 ms for new messages unless `fetch.wait.max.ms` says otherwise (librdkafka's
/// 500 ms default, which brokers that do not answer early add to every alert's latency).
pub(crate) fn assign_config(props: &BTreeMap<String, String>, name: &str) -> ClientConfig {
    let mut cfg = client_config(props);
    cfg.set("enable.auto.commit", "false");
    if !props.contains_key("fetch.wait.max.ms") {
        cfg.set("fetch.wait.max.ms", "10");
    }
    if !props.contains_key("group.id") {
        cfg.set("group.id", format!("rampart-{name}-{}", std::process::id()));
    }
    cfg
}

/// A Kafka client error as an [`Error`] whose SQLSTATE says what kind of failure it is: a
/// configuration librdkafka refused `22023`; a broker that cannot be reached, a transport
/// failure or a timeout `08006`; an unknown topic or partition `42704`; refused credentials
/// `28000`; a refused ACL `42501`; anything else `58000`. `message` says what was being
/// done (and usually ends with `e`); `e` is kept as the source.
pub(crate) fn kafka_error(message: impl Into<String>, e: KafkaError) -> Error {
    use RDKafkaErrorCode as C;
    let state = match &e {
        KafkaError::ClientConfig(..) | KafkaError::ClientCreation(_) => SqlState::InvalidParameterValue,
        other => match other.rdkafka_error_code() {
            Some(C::InvalidConfig | C::NotConfigured) => SqlState::InvalidParameterValue,
            Some(
                C::BrokerTransportFailure
                | C::Resolve
                | C::AllBrokersDown
                | C::BrokerNotAvailable
                | C::NetworkException
                | C::LeaderNotAvailable
                | C::MessageTimedOut
                | C::OperationTimedOut
                | C::RequestTimedOut
                | C::TimedOutQueue
                | C::SSL,
            ) => SqlState::ConnectionFailure,
            Some(C::UnknownTopic | C::UnknownPartition | C::UnknownTopicOrPartition | C::UnknownTopicId) => {
                SqlState::UndefinedObject
            }
            Some(
                C::Authentication | C::SaslAuthenticationFailed | C::UnsupportedSASLMechanism | C::IllegalSASLState,
            ) => SqlState::InvalidAuthorization,
            Some(
                C::TopicAuthorizationFailed
                | C::GroupAuthorizationFailed
                | C::ClusterAuthorizationFailed
                | C::TransactionalIdAuthorizationFailed
                | C::DelegationTokenAuthorizationFailed,
            ) => SqlState::InsufficientPrivilege,
            _ => SqlState::SystemError,
        },
    };
    Error::new(state, message).with_source(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_errors_carry_the_sqlstate_of_their_kind() {
        let state = |e: KafkaError| kafka_error(e.to_string(), e).sqlstate();
        assert_eq!(state(KafkaError::ClientCreation("bad".into())), "22023");
        assert_eq!(
            state(KafkaError::MetadataFetch(RDKafkaErrorCode::AllBrokersDown)),
            "08006"
        );
        assert_eq!(state(KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut)), "08006");
        assert_eq!(
            state(KafkaError::MetadataFetch(RDKafkaErrorCode::UnknownTopicOrPartition)),
            "42704"
        );
        assert_eq!(
            state(KafkaError::MessageProduction(
                RDKafkaErrorCode::SaslAuthenticationFailed
            )),
            "28000"
        );
        assert_eq!(
            state(KafkaError::MessageProduction(
                RDKafkaErrorCode::TopicAuthorizationFailed
            )),
            "42501"
        );
        assert_eq!(
            state(KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge)),
            "58000"
        );
    }
}
