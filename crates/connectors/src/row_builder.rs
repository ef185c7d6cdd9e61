//! [`RowBuilder`]: turns one JSON text into the row a reader sends. The text is decoded
//! into the source's columns (kept in one reused vector), and then, where the view
//! projects the source right away, built straight into the projection's shape
//! (`rampart_dataflow::SourceProjection`), else into a row of those columns.

use std::sync::Arc;

use rampart_dataflow::SourceProjection;
use rampart_repr::{Datum, RelationDesc, Row};

use crate::json_decode::JsonDecoder;

/// A reader's decoder, its projection, and the values of the text decoded last.
pub(crate) struct RowBuilder {
    decoder: JsonDecoder,
    projection: Option<Arc<SourceProjection>>,
    values: Vec<Datum>,
}

impl RowBuilder {
    /// Decodes JSON into the columns of `desc`; builds rows through `projection` if given.
    pub(crate) fn new(desc: &RelationDesc, projection: Option<Arc<SourceProjection>>) -> Self {
        RowBuilder {
            decoder: JsonDecoder::new(desc),
            projection,
            values: Vec::with_capacity(desc.columns.len()),
        }
    }

    /// Decodes `text`. On success its values are [`RowBuilder::values`] until the next call.
    pub(crate) fn decode(&mut self, text: &str) -> Result<(), rampart_repr::Error> {
        self.decoder.decode_into(text, &mut self.values)
    }

    /// Appends a value after the decoded columns (a Kafka metadata column).
    pub(crate) fn push_value(&mut self, value: Datum) {
        self.values.push(value);
    }

    /// The values decoded last (and appended), in the source's column order.
    pub(crate) fn values(&self) -> &[Datum] {
        &self.values
    }

    /// The row to send for the values decoded last: the projection's row, or a row of
    /// the values themselves.
    pub(crate) fn finish(&mut self) -> Row {
        match &self.projection {
            Some(p) => {
                let row = p.apply(&self.values);
                self.values.clear();
                row
            }
            None => self.values.drain(..).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::datatypes::DataType;
    use datafusion::logical_expr::cast;
    use datafusion::prelude::{col, lit};
    use rampart_repr::ColumnType;

    use super::*;

    fn desc() -> RelationDesc {
        RelationDesc::new([
            ("user_id".to_string(), ColumnType::Text),
            ("port".to_string(), ColumnType::Int32),
        ])
    }

    /// Expected rows written by hand from the JSON texts.
    #[test]
    fn rows_are_the_decoded_values_or_their_projection() {
        let mut plain = RowBuilder::new(&desc(), None);
        plain.decode(r#"{"user_id":"alice","port":22}"#).unwrap();
        assert_eq!(plain.values(), &[Datum::str("alice"), Datum::Int(22)]);
        assert_eq!(plain.finish(), Row::new(vec![Datum::str("alice"), Datum::Int(22)]));
        plain.decode(r#"{"port":23}"#).unwrap();
        assert_eq!(
            plain.finish(),
            Row::new(vec![Datum::Null, Datum::Int(23)]),
            "a missing field is NULL"
        );
        assert!(plain.decode(r#"{"port":"x"}"#).is_err());

        let schema = Arc::new(
            datafusion::common::DFSchema::try_from(desc().arrow_schema().as_ref().clone())
                .expect("schema of the columns"),
        );
        let exprs = [lit("auth"), cast(col("port"), DataType::Utf8), col("user_id")];
        let projection = SourceProjection::compile(&exprs, &schema)
            .unwrap()
            .expect("runs on rows");
        let mut projected = RowBuilder::new(&desc(), Some(Arc::new(projection)));
        projected.decode(r#"{"user_id":"bob","port":443}"#).unwrap();
        assert_eq!(projected.values(), &[Datum::str("bob"), Datum::Int(443)]);
        assert_eq!(
            projected.finish(),
            Row::new(vec![Datum::str("auth"), Datum::str("443"), Datum::str("bob")])
        );
        projected.decode(r#"{"user_id":"carol"}"#).unwrap();
        assert_eq!(
            projected.finish(),
            Row::new(vec![Datum::str("auth"), Datum::Null, Datum::str("carol")])
        );
    }
}
