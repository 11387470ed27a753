use super::*;

fn params(s: &str) -> Params {
    match Params::parse(s.as_bytes()) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    }
}

const OPS: &[&str] = &["AssumeRole", "GetCallerIdentity"];

#[test]
fn action_and_version() {
    let ok =
        QueryRequest::parse(&STS, "", Some(b"Action=AssumeRole&Version=2011-06-15"), OPS).unwrap();
    assert_eq!(
        (ok.action(), ok.version(), ok.service().name),
        ("AssumeRole", "2011-06-15", "sts")
    );

    let e = QueryRequest::parse(&STS, "Version=2011-06-15", None, OPS).unwrap_err();
    assert_eq!(
        (&*e.code, e.message.as_str(), e.status),
        ("MissingAction", "Missing Action", 400)
    );

    let e = QueryRequest::parse(&STS, "Action=AssumeRole", None, OPS).unwrap_err();
    assert_eq!(
        (&*e.code, e.message.as_str(), e.status),
        (
            "InvalidAction",
            "Could not find operation AssumeRole for version NO_VERSION_SPECIFIED",
            400
        )
    );
    let e =
        QueryRequest::parse(&STS, "Action=AssumeRole&Version=2010-05-08", None, OPS).unwrap_err();
    assert_eq!(
        e.message,
        "Could not find operation AssumeRole for version 2010-05-08"
    );
    let e =
        QueryRequest::parse(&STS, "Action=assumerole&Version=2011-06-15", None, OPS).unwrap_err();
    assert_eq!(
        e.message,
        "Could not find operation assumerole for version 2011-06-15"
    );

    // Query string first, then body.
    let r = QueryRequest::parse(
        &STS,
        "Action=GetCallerIdentity&Version=2011-06-15",
        Some(b"Action=AssumeRole&X=1"),
        OPS,
    )
    .unwrap();
    assert_eq!(r.action(), "GetCallerIdentity");
    assert_eq!(r.params().get("X"), Some("1"));
}

#[test]
fn required_members_aggregate() {
    let p = params("Action=AssumeRole");
    let mut v = Validator::new(&p);
    assert_eq!(v.required_str("RoleArn", &rules::STS_ARN), Required(None));
    let _ = v.required_str("RoleSessionName", &rules::ROLE_SESSION_NAME);
    let e = v.finish().unwrap_err();
    assert_eq!((&*e.code, e.status), ("ValidationError", 400));
    assert_eq!(
        e.message,
        "2 validation errors detected: Value null at 'roleArn' failed to satisfy constraint: Member must not be null; \
         Value null at 'roleSessionName' failed to satisfy constraint: Member must not be null"
    );
}

#[test]
fn one_error_is_singular_and_lengths_and_patterns_each_count() {
    let p = params("RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fr&RoleSessionName=a");
    let mut v = Validator::new(&p);
    assert_eq!(
        v.required_str("RoleArn", &rules::STS_ARN),
        Required(Some("arn:aws:iam::123456789012:role/r".to_string()))
    );
    let _ = v.required_str("RoleSessionName", &rules::ROLE_SESSION_NAME);
    assert_eq!(
        v.finish().unwrap_err().message,
        "1 validation error detected: Value 'a' at 'roleSessionName' failed to satisfy constraint: \
         Member must have length greater than or equal to 2"
    );

    let p = params("RoleSessionName=a+b&ExternalId=x");
    let mut v = Validator::new(&p);
    assert_eq!(v.str("RoleSessionName", &rules::ROLE_SESSION_NAME), None);
    assert_eq!(v.str("ExternalId", &rules::EXTERNAL_ID), None);
    assert_eq!(v.str("Missing", &rules::EXTERNAL_ID), None);
    assert_eq!(
        v.finish().unwrap_err().message,
        "2 validation errors detected: Value 'a b' at 'roleSessionName' failed to satisfy constraint: \
         Member must satisfy regular expression pattern: [\\w+=,.@-]*; \
         Value 'x' at 'externalId' failed to satisfy constraint: Member must have length greater than or equal to 2"
    );

    let long = "x".repeat(65);
    let p: Params = [("RoleSessionName", format!("{long} "))]
        .into_iter()
        .collect();
    let mut v = Validator::new(&p);
    v.str("RoleSessionName", &rules::ROLE_SESSION_NAME);
    let msg = v.finish().unwrap_err().message;
    assert!(msg.starts_with("2 validation errors detected: "), "{msg}");
    assert!(
        msg.contains("Member must have length less than or equal to 64; "),
        "{msg}"
    );
}

#[test]
fn sensitive_values_stay_out_of_messages() {
    let p = params("WebIdentityToken=abc");
    let mut v = Validator::new(&p);
    let _ = v.required_str("WebIdentityToken", &rules::WEB_IDENTITY_TOKEN);
    let msg = v.finish().unwrap_err().message;
    assert_eq!(
        msg,
        "1 validation error detected: Value at 'webIdentityToken' failed to satisfy constraint: \
         Member must have length greater than or equal to 4"
    );
}

#[test]
fn integers_and_booleans() {
    let p = params("DurationSeconds=3600&Low=10&High=50000&Bad=1h&Huge=99999999999999999999999&B1=TRUE&B2=false&B3=yes&Spaced=%20900&Trailing=900%20");
    let mut v = Validator::new(&p);
    assert_eq!(
        v.int("DurationSeconds", &rules::ROLE_DURATION_SECONDS),
        Some(3600)
    );
    assert_eq!(v.int("Absent", &rules::ROLE_DURATION_SECONDS), None);
    assert_eq!(v.bool("B1"), Some(true));
    assert_eq!(v.bool("B2"), Some(false));
    assert!(v.finish().is_ok());

    let mut v = Validator::new(&p);
    assert_eq!(v.int("Low", &rules::ROLE_DURATION_SECONDS), None);
    v.int("High", &rules::ROLE_DURATION_SECONDS);
    v.int("Bad", &IntRule::ANY);
    v.int("Huge", &IntRule::ANY);
    v.bool("B3");
    assert_eq!(
        v.required_int("MaxItems", &rules::MAX_ITEMS),
        Required(None)
    );
    assert_eq!(v.int("Spaced", &rules::ROLE_DURATION_SECONDS), None);
    assert_eq!(v.int("Trailing", &rules::ROLE_DURATION_SECONDS), None);
    let msg = v.finish().unwrap_err().message;
    assert_eq!(
        msg,
        "8 validation errors detected: \
         Value '10' at 'low' failed to satisfy constraint: Member must have value greater than or equal to 900; \
         Value '50000' at 'high' failed to satisfy constraint: Member must have value less than or equal to 43200; \
         Value '1h' at 'bad' failed to satisfy constraint: Member must be a number; \
         Value '99999999999999999999999' at 'huge' failed to satisfy constraint: Member must be a number; \
         Value 'yes' at 'b3' failed to satisfy constraint: Member must be a boolean; \
         Value null at 'maxItems' failed to satisfy constraint: Member must not be null; \
         Value ' 900' at 'spaced' failed to satisfy constraint: Member must be a number; \
         Value '900 ' at 'trailing' failed to satisfy constraint: Member must be a number"
    );
}

#[test]
fn duplicate_tag_keys_ignore_case() {
    assert!(!has_duplicate_keys(["a", "b", "ab"]));
    assert!(has_duplicate_keys(["k", "k"]));
    assert!(has_duplicate_keys(["team", "x", "TEAM"]));
    assert!(!has_duplicate_keys([]));
}

#[test]
fn string_lists_with_gaps_order_and_limits() {
    let p = params(
        "ClientIDList.member.3=three&ClientIDList.member.2=two&ClientIDList.member.1=one\
         &ClientIDList.member.x=junk&ClientIDList.member.4.Sub=junk",
    );
    let mut v = Validator::new(&p);
    assert_eq!(
        v.str_list("ClientIDList", &ListRule::ANY, &rules::CLIENT_ID),
        ["one", "two", "three"]
    );
    assert_eq!(
        v.str_list("ThumbprintList", &ListRule::ANY, &rules::THUMBPRINT),
        Vec::<String>::new()
    );
    assert!(v.finish().is_ok());

    // Indexes other than 1..=n: zero, zero-padded, a gap, one past u32.
    for (query, bad) in [
        ("L.member.0=a", "0 is not a valid index (L.member.0)"),
        (
            "L.member.1=a&L.member.01=b",
            "01 is not a valid index (L.member.01)",
        ),
        (
            "L.member.1=a&L.member.3=c",
            "3 is not a valid index (L.member.3)",
        ),
        (
            "L.member.1=a&L.member.99999999999999=c",
            "99999999999999 is not a valid index (L.member.99999999999999)",
        ),
    ] {
        let p = params(query);
        let mut v = Validator::new(&p);
        v.str_list("L", &ListRule::ANY, &StrRule::ANY);
        // A constraint failure elsewhere does not hide the malformed list.
        let _ = v.required_str("Missing", &StrRule::ANY);
        let e = v.finish().unwrap_err();
        assert_eq!(
            (e.code.as_ref(), e.status),
            ("MalformedInput", 400),
            "{query}"
        );
        assert_eq!(e.message, bad, "{query}");
    }
    let p = params("Tags.member.0.Key=k&Tags.member.0.Value=v");
    let mut v = Validator::new(&p);
    assert!(v.struct_list("Tags", &rules::TAG_LIST).is_empty());
    assert_eq!(
        v.finish().unwrap_err().message,
        "0 is not a valid index (Tags.member.0)"
    );

    // Empty list as botocore sends it, required list missing, too many members, bad item.
    let p = params("TransitiveTagKeys=&Tags.member.1.Key=a&TransitiveTagKeys2.member.1=a&TransitiveTagKeys2.member.2=b*");
    let mut v = Validator::new(&p);
    assert!(v
        .str_list("TransitiveTagKeys", &rules::TAG_LIST, &rules::TAG_KEY)
        .is_empty());
    assert_eq!(v.error_count(), 0);
    v.str_list(
        "ActionNames",
        &ListRule::ANY.required(),
        &rules::ACTION_NAME,
    );
    v.str_list("TransitiveTagKeys2", &ListRule::max(1), &rules::TAG_KEY);
    let msg = v.finish().unwrap_err().message;
    assert_eq!(
        msg,
        "3 validation errors detected: \
         Value null at 'actionNames' failed to satisfy constraint: Member must not be null; \
         Value '[a, b*]' at 'transitiveTagKeys2' failed to satisfy constraint: Member must have length less than or equal to 1; \
         Value 'b*' at 'transitiveTagKeys2.2.member' failed to satisfy constraint: \
         Member must satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]+"
    );
}

#[test]
fn structure_lists_and_nesting() {
    let p = params(
        "Tags.member.1.Key=team&Tags.member.1.Value=a&Tags.member.2.Key=bad*key&Tags.member.2.Value=b\
         &PolicyArns.member.1.arn=arn%3Aaws%3Aiam%3A%3Aaws%3Apolicy%2FReadOnlyAccess\
         &ContextEntries.member.1.ContextKeyName=aws%3AUsername&ContextEntries.member.1.ContextKeyType=string\
         &ContextEntries.member.1.ContextKeyValues.member.1=alice&ContextEntries.member.1.ContextKeyValues.member.2=bob\
         &ContextEntries.member.2.ContextKeyName=aws%3ASourceIp&ContextEntries.member.2.ContextKeyType=ipv9",
    );
    let mut v = Validator::new(&p);
    let tags: Vec<(Required<String>, Required<String>)> = v
        .struct_list("Tags", &rules::TAG_LIST)
        .iter()
        .map(|t| {
            (
                v.required_str(t.member("Key"), &rules::TAG_KEY),
                v.required_str(t.member("Value"), &rules::TAG_VALUE),
            )
        })
        .collect();
    assert_eq!(
        tags[0],
        (
            Required(Some("team".to_owned())),
            Required(Some("a".to_owned()))
        )
    );
    // The invalid key has no value to read.
    assert_eq!(tags[1].0, Required(None));
    let arns: Required<Vec<String>> = v
        .struct_list("PolicyArns", &ListRule::ANY)
        .iter()
        .map(|m| v.required_str(m.member("arn"), &rules::STS_ARN))
        .collect();
    assert_eq!(
        arns,
        Required(Some(vec![
            "arn:aws:iam::aws:policy/ReadOnlyAccess".to_owned()
        ]))
    );
    let entries = v.struct_list("ContextEntries", &ListRule::ANY);
    let mut values = Vec::new();
    for e in &entries {
        v.str(e.member("ContextKeyName"), &rules::CONTEXT_KEY_NAME);
        v.str(e.member("ContextKeyType"), &rules::CONTEXT_KEY_TYPE);
        values.push(v.str_list(e.member("ContextKeyValues"), &ListRule::ANY, &StrRule::ANY));
    }
    assert_eq!(values, [vec!["alice".to_owned(), "bob".to_owned()], vec![]]);
    let msg = v.finish().unwrap_err().message;
    assert_eq!(
        msg,
        "2 validation errors detected: \
         Value 'bad*key' at 'tags.2.member.key' failed to satisfy constraint: \
         Member must satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]+; \
         Value 'ipv9' at 'contextEntries.2.member.contextKeyType' failed to satisfy constraint: \
         Member must satisfy enum value set: [string, stringList, numeric, numericList, boolean, booleanList, ip, ipList, binary, binaryList, date, dateList]"
    );
}

#[test]
fn too_many_structures_and_required_structure_list() {
    let body: String = (1..=51)
        .map(|i| format!("Tags.member.{i}.Key=k{i}&Tags.member.{i}.Value=v&"))
        .collect();
    let p = params(&body);
    let mut v = Validator::new(&p);
    assert_eq!(v.struct_list("Tags", &rules::TAG_LIST).len(), 51);
    v.struct_list("Other", &ListRule::ANY.required());
    assert_eq!(
        v.finish().unwrap_err().message,
        "2 validation errors detected: Value at 'tags' failed to satisfy constraint: Member must have length less than or equal to 50; \
         Value null at 'other' failed to satisfy constraint: Member must not be null"
    );
}

#[test]
fn labels_lower_the_first_letter_only() {
    assert_eq!(Path::new("ClientIDList").label(), "clientIDList");
    assert_eq!(Path::new("RoleArn").member("X").label(), "roleArn.x");
    assert_eq!(Path::new("").label(), "");
}
