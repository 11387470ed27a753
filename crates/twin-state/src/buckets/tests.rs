//! The buckets module's unit tests: buckets, objects and multipart uploads on a store in a
//! temporary directory.

use super::*;

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

fn put(store: &Store, bucket: &str, key: &str, body: &[u8]) -> ObjectMeta {
    let temp = store.object_bodies().temp_path().unwrap();
    std::fs::write(&temp, body).unwrap();
    store
        .put_object(
            bucket,
            &NewObject {
                key: key.into(),
                size: body.len() as u64,
                etag: md5_hex(body),
                ..Default::default()
            },
            &temp,
        )
        .unwrap()
}

#[test]
fn the_default_world_has_seed_000s_picture() {
    let (_d, s) = store();
    s.seed_if_empty(&crate::World::default_world(|c| {
        format!("http://127.0.0.1:4555/{c}")
    }))
    .unwrap();
    let pics = s.get_bucket("pics").unwrap().unwrap();
    assert_eq!(
        (pics.owner.as_str(), pics.region.as_str()),
        ("222222222222", "us-east-1")
    );
    let cat = s.get_object("pics", "indoor-cat.jpg").unwrap();
    assert_eq!(cat.content_type.as_deref(), Some("image/jpeg"));
    let body = std::fs::read(s.object_bodies().body_path("pics", &cat.body_id)).unwrap();
    assert_eq!(body.len() as u64, cat.size);
    assert_eq!(md5_hex(&body), cat.etag);
    // JPEG: SOI marker first, EOI marker last.
    assert_eq!(&body[..3], &[0xFF, 0xD8, 0xFF]);
    assert_eq!(&body[body.len() - 2..], &[0xFF, 0xD9]);
}

#[test]
fn world_buckets_are_checked() {
    let world = |bucket: &str| {
        crate::World::from_yaml(&format!(
            "accounts:\n  - id: \"111111111111\"\n    alias: a\n    buckets:\n{bucket}"
        ))
        .unwrap()
    };
    let (_d, s) = store();
    let err = s
        .seed_if_empty(&world("      - name: Bad_Name\n"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("InvalidBucketName"), "{err}");
    let err = s
            .seed_if_empty(&world(
                "      - name: ok-bucket\n        objects:\n          - key: k\n            text: a\n            base64: YQ==\n",
            ))
            .unwrap_err()
            .to_string();
    assert!(err.contains("exactly one of text and base64"), "{err}");
    let err = s
            .seed_if_empty(&world(
                "      - name: ok-bucket\n        policy: '{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"s3:GetObject\",\"Resource\":\"*\"}]}'\n",
            ))
            .unwrap_err()
            .to_string();
    assert!(err.contains("Principal"), "{err}");
    // Nothing of a refused world is stored.
    assert!(s.get_bucket("ok-bucket").unwrap().is_none());
    s.seed_if_empty(&world(
            "      - name: ok-bucket\n        objects:\n          - key: hello.txt\n            text: Hello\n",
        ))
        .unwrap();
    assert_eq!(s.get_object("ok-bucket", "hello.txt").unwrap().size, 5);
}

#[test]
fn bucket_names_follow_s3_rules() {
    for ok in ["pics", "a.b-c", "abc", &"a".repeat(63)] {
        assert!(is_valid_bucket_name(ok), "{ok}");
    }
    for bad in [
        "ab",
        "Pics",
        "a..b",
        "-ab",
        "ab-",
        "192.168.1.1",
        "xn--ab",
        "a_b",
        &"a".repeat(64),
    ] {
        assert!(!is_valid_bucket_name(bad), "{bad}");
    }
}

#[test]
fn a_bucket_named_like_the_receiving_area_does_not_share_it() {
    let (_d, s) = store();
    let bodies = s.object_bodies();
    s.create_bucket("tmp", "111111111111", "us-east-1").unwrap();
    let receiving = bodies.temp_path().unwrap();
    std::fs::write(&receiving, b"half an upload").unwrap();
    s.delete_bucket("tmp").unwrap();
    assert_eq!(std::fs::read(&receiving).unwrap(), b"half an upload");
    assert!(!receiving.starts_with(bodies.body_path("tmp", "")));
}

#[test]
fn create_conflicts_name_the_owner() {
    let (_d, s) = store();
    s.create_bucket("pics", "111111111111", "us-east-1")
        .unwrap();
    assert!(matches!(
        s.create_bucket("pics", "111111111111", "us-east-1"),
        Err(BucketError::AlreadyOwnedByYou)
    ));
    assert!(matches!(
        s.create_bucket("pics", "222222222222", "us-east-1"),
        Err(BucketError::AlreadyExists)
    ));
    assert_eq!(s.list_buckets("111111111111").unwrap().len(), 1);
    assert!(s.list_buckets("222222222222").unwrap().is_empty());
}

#[test]
fn overwrite_replaces_the_body_and_removes_the_old_file() {
    let (_d, s) = store();
    s.create_bucket("pics", "111111111111", "us-east-1")
        .unwrap();
    let first = put(&s, "pics", "k", b"one");
    let second = put(&s, "pics", "k", b"two!");
    let bodies = s.object_bodies();
    assert!(!bodies.body_path("pics", &first.body_id).exists());
    assert_eq!(
        std::fs::read(bodies.body_path("pics", &second.body_id)).unwrap(),
        b"two!"
    );
    let meta = s.get_object("pics", "k").unwrap();
    assert_eq!(
        (meta.size, meta.etag.as_str()),
        (4, md5_hex(b"two!").as_str())
    );
    assert!(matches!(
        s.delete_bucket("pics"),
        Err(BucketError::NotEmpty)
    ));
    s.delete_object("pics", "k").unwrap();
    assert!(matches!(
        s.get_object("pics", "k"),
        Err(BucketError::NoSuchKey)
    ));
    s.delete_bucket("pics").unwrap();
    assert!(matches!(
        s.get_object("pics", "k"),
        Err(BucketError::NoSuchBucket)
    ));
}

#[test]
fn put_into_a_missing_bucket_leaves_nothing_behind() {
    let (_d, s) = store();
    let temp = s.object_bodies().temp_path().unwrap();
    std::fs::write(&temp, b"x").unwrap();
    let err = s
        .put_object("nope", &NewObject::default(), &temp)
        .unwrap_err();
    assert!(matches!(err, BucketError::NoSuchBucket));
    assert!(!temp.exists());
}

#[test]
fn listing_pages_and_rolls_up_prefixes() {
    let (_d, s) = store();
    s.create_bucket("pics", "111111111111", "us-east-1")
        .unwrap();
    s.create_bucket("pics2", "111111111111", "us-east-1")
        .unwrap();
    for k in ["a.jpg", "cats/1.jpg", "cats/2.jpg", "dogs/1.jpg", "z.jpg"] {
        put(&s, "pics", k, k.as_bytes());
    }
    put(&s, "pics2", "a.jpg", b"other bucket");
    let keys = |l: &ObjectListing| l.objects.iter().map(|o| o.key.clone()).collect::<Vec<_>>();

    let all = s.list_objects("pics", "", None, None, 1000).unwrap();
    assert_eq!(keys(&all).len(), 5);
    assert!(!all.truncated);

    let rolled = s.list_objects("pics", "", Some("/"), None, 1000).unwrap();
    assert_eq!(keys(&rolled), ["a.jpg", "z.jpg"]);
    assert_eq!(rolled.common_prefixes, ["cats/", "dogs/"]);

    let page1 = s.list_objects("pics", "", Some("/"), None, 2).unwrap();
    assert!(page1.truncated);
    assert_eq!(keys(&page1), ["a.jpg"]);
    assert_eq!(page1.common_prefixes, ["cats/"]);
    let page2 = s
        .list_objects("pics", "", Some("/"), page1.last.as_deref(), 2)
        .unwrap();
    assert_eq!(page2.common_prefixes, ["dogs/"]);
    assert_eq!(keys(&page2), ["z.jpg"]);
    assert!(!page2.truncated);

    let cats = s.list_objects("pics", "cats/", None, None, 1000).unwrap();
    assert_eq!(keys(&cats), ["cats/1.jpg", "cats/2.jpg"]);
}

fn part(store: &Store, upload: &Upload, number: u32, body: &[u8]) -> PartMeta {
    let temp = store.object_bodies().temp_path().unwrap();
    std::fs::write(&temp, body).unwrap();
    store
        .put_part(
            "pics",
            &upload.key,
            &upload.upload_id,
            number,
            body.len() as u64,
            &md5_hex(body),
            &temp,
        )
        .unwrap()
}

#[test]
fn multipart_uploads_survive_a_restart_and_complete_into_one_object() {
    let dir = tempfile::tempdir().unwrap();
    let first = vec![b'a'; MIN_PART_SIZE as usize];
    let second = b"the end".to_vec();
    let upload = {
        let s = Store::open(dir.path()).unwrap();
        s.create_bucket("pics", "111111111111", "us-east-1")
            .unwrap();
        let upload = s
            .create_upload(
                "pics",
                &NewUpload {
                    key: "big.bin".into(),
                    owner: "111111111111".into(),
                    initiator: "arn:aws:iam::111111111111:user/admin".into(),
                    content_type: Some("application/x-test".into()),
                    ..Default::default()
                },
            )
            .unwrap();
        // A part uploaded twice keeps the second body only.
        let replaced = part(&s, &upload, 1, b"replaced");
        part(&s, &upload, 1, &first);
        assert!(!s
            .object_bodies()
            .part_path(&upload.upload_id, &replaced.body_id)
            .exists());
        upload
    };
    let s = Store::open(dir.path()).unwrap();
    let listed = s.list_uploads("pics", "", None, None, None, 1000).unwrap();
    assert_eq!(listed.uploads, vec![upload.clone()]);
    part(&s, &upload, 2, &second);
    let parts = s
        .list_parts("pics", "big.bin", &upload.upload_id, 0, 1)
        .unwrap();
    assert_eq!((parts.parts.len(), parts.truncated), (1, true));
    let rest = s
        .list_parts("pics", "big.bin", &upload.upload_id, 1, 1000)
        .unwrap();
    assert_eq!((rest.parts[0].part_number, rest.truncated), (2, false));

    let listed = |numbers: &[(u32, &[u8])]| -> Vec<(u32, String)> {
        numbers.iter().map(|(n, b)| (*n, md5_hex(b))).collect()
    };
    let id = upload.upload_id.as_str();
    let complete = |parts: &[(u32, String)]| s.complete_upload("pics", "big.bin", id, parts);
    assert!(matches!(
        complete(&listed(&[(2, &second), (1, &first)])),
        Err(BucketError::InvalidPartOrder)
    ));
    assert!(matches!(
        complete(&listed(&[(1, &first), (2, b"other")])),
        Err(BucketError::InvalidPart)
    ));
    assert!(matches!(
        complete(&listed(&[(1, &first), (3, &second)])),
        Err(BucketError::InvalidPart)
    ));
    // Part 2 is too small to be followed by another.
    assert!(matches!(
        complete(&listed(&[(2, &second), (3, &second)])),
        Err(BucketError::InvalidPart)
    ));
    let meta = complete(&listed(&[(1, &first), (2, &second)])).unwrap();

    // S3's multipart ETag, computed independently.
    let mut digests = Md5::digest(&first).to_vec();
    digests.extend_from_slice(&Md5::digest(&second));
    assert_eq!(meta.etag, format!("{}-2", md5_hex(&digests)));
    assert_eq!(meta.content_type.as_deref(), Some("application/x-test"));
    let body = std::fs::read(s.object_bodies().body_path("pics", &meta.body_id)).unwrap();
    assert_eq!(body, [first.as_slice(), second.as_slice()].concat());
    // The upload is gone, with its part files.
    assert!(matches!(
        s.get_upload("pics", "big.bin", id),
        Err(BucketError::NoSuchUpload)
    ));
    assert!(!s.object_bodies().upload_dir(id).exists());
    assert!(matches!(
        complete(&listed(&[(1, &first)])),
        Err(BucketError::NoSuchUpload)
    ));
}

#[test]
fn small_parts_before_the_last_are_refused_and_aborts_remove_parts() {
    let (_d, s) = store();
    s.create_bucket("pics", "111111111111", "us-east-1")
        .unwrap();
    let new = NewUpload {
        key: "k".into(),
        ..Default::default()
    };
    let upload = s.create_upload("pics", &new).unwrap();
    let one = part(&s, &upload, 1, b"small");
    part(&s, &upload, 2, b"last");
    let err = s
        .complete_upload(
            "pics",
            "k",
            &upload.upload_id,
            &[(1, md5_hex(b"small")), (2, md5_hex(b"last"))],
        )
        .unwrap_err();
    assert!(matches!(err, BucketError::EntityTooSmall));
    // A single small part is a whole object.
    let other = s.create_upload("pics", &new).unwrap();
    assert!(other.upload_id > upload.upload_id, "ids follow creation");
    let listed = s.list_uploads("pics", "", None, None, None, 1).unwrap();
    assert!(listed.truncated);
    assert_eq!(
        listed.next_upload_id_marker.as_deref(),
        Some(upload.upload_id.as_str())
    );
    let next = s
        .list_uploads(
            "pics",
            "",
            None,
            Some("k"),
            listed.next_upload_id_marker.as_deref(),
            1,
        )
        .unwrap();
    assert_eq!(next.uploads[0].upload_id, other.upload_id);

    s.abort_upload("pics", "k", &upload.upload_id).unwrap();
    assert!(!s
        .object_bodies()
        .part_path(&upload.upload_id, &one.body_id)
        .exists());
    assert!(matches!(
        s.abort_upload("pics", "k", &upload.upload_id),
        Err(BucketError::NoSuchUpload)
    ));
    assert!(matches!(
        s.abort_upload("nope", "k", &upload.upload_id),
        Err(BucketError::NoSuchBucket)
    ));
    // Parts of a finished upload are refused and leave nothing behind.
    let temp = s.object_bodies().temp_path().unwrap();
    std::fs::write(&temp, b"late").unwrap();
    assert!(matches!(
        s.put_part(
            "pics",
            "k",
            &upload.upload_id,
            3,
            4,
            &md5_hex(b"late"),
            &temp
        ),
        Err(BucketError::NoSuchUpload)
    ));
    assert!(!temp.exists());
    // Deleting the bucket takes the remaining upload with it.
    s.delete_bucket("pics").unwrap();
    assert!(!s.object_bodies().upload_dir(&other.upload_id).exists());
    s.create_bucket("pics", "111111111111", "us-east-1")
        .unwrap();
    assert!(s
        .list_uploads("pics", "", None, None, None, 1000)
        .unwrap()
        .uploads
        .is_empty());
}
