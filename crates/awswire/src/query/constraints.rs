//! The constraints a member is checked against: the model's `min`, `max`, `pattern` and `enum`.

use crate::pattern::Pattern;

/// Constraints of a string member: the model's `min`, `max`, `pattern` and `enum`.
///
/// Lengths count characters (Unicode scalar values).
#[derive(Clone, Copy, Debug)]
pub struct StrRule {
    /// Minimum length.
    pub min: usize,
    /// Maximum length.
    pub max: Option<usize>,
    /// Pattern the whole value must match.
    pub pattern: Option<Pattern>,
    /// The allowed values, for enums.
    pub one_of: Option<&'static [&'static str]>,
    /// Keep the value out of messages (the model's `sensitive` members: tokens, assertions).
    /// Chosen here: such failures read `Value at 'x' failed …`.
    pub sensitive: bool,
}

impl StrRule {
    /// No constraint.
    pub const ANY: StrRule = StrRule {
        min: 0,
        max: None,
        pattern: None,
        one_of: None,
        sensitive: false,
    };

    /// Length bounds, inclusive.
    pub const fn len(min: usize, max: usize) -> StrRule {
        StrRule {
            min,
            max: Some(max),
            ..Self::ANY
        }
    }

    /// A minimum length only.
    pub const fn min_len(min: usize) -> StrRule {
        StrRule { min, ..Self::ANY }
    }

    /// With a pattern.
    pub const fn pattern(self, pattern: Pattern) -> StrRule {
        StrRule {
            pattern: Some(pattern),
            ..self
        }
    }

    /// With an enum.
    pub const fn one_of(self, values: &'static [&'static str]) -> StrRule {
        StrRule {
            one_of: Some(values),
            ..self
        }
    }

    /// Marked sensitive.
    pub const fn sensitive(self) -> StrRule {
        StrRule {
            sensitive: true,
            ..self
        }
    }
}

/// Constraints of an integer member: the model's `min` and `max`, inclusive.
#[derive(Clone, Copy, Debug)]
pub struct IntRule {
    /// Minimum value.
    pub min: Option<i64>,
    /// Maximum value.
    pub max: Option<i64>,
}

impl IntRule {
    /// Inclusive bounds.
    pub const fn range(min: i64, max: i64) -> IntRule {
        IntRule {
            min: Some(min),
            max: Some(max),
        }
    }

    /// No bound.
    pub const ANY: IntRule = IntRule {
        min: None,
        max: None,
    };
}

/// Constraints of a list member: whether it is required and its `min`/`max` length.
#[derive(Clone, Copy, Debug)]
pub struct ListRule {
    /// The member must be present (`Value null … Member must not be null` otherwise).
    pub required: bool,
    /// Minimum number of members.
    pub min: usize,
    /// Maximum number of members.
    pub max: Option<usize>,
}

impl ListRule {
    /// Optional, any length.
    pub const ANY: ListRule = ListRule {
        required: false,
        min: 0,
        max: None,
    };

    /// Optional, at most `max` members.
    pub const fn max(max: usize) -> ListRule {
        ListRule {
            max: Some(max),
            ..Self::ANY
        }
    }

    /// Optional, between `min` and `max` members.
    pub const fn len(min: usize, max: usize) -> ListRule {
        ListRule {
            required: false,
            min,
            max: Some(max),
        }
    }

    /// Required.
    pub const fn required(self) -> ListRule {
        ListRule {
            required: true,
            ..self
        }
    }
}
