//! The regions a credential scope may name, per partition, as AWS checks them: a request
//! signed for a region that does not exist is refused before its signature is looked at
//! ("Credential should be scoped to a valid region."), and a global service (IAM) accepts
//! only its partition's signing region.

/// One AWS partition: its name, its regions, and the signing region of its global services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    /// `aws`, `aws-cn`, `aws-us-gov`.
    pub name: &'static str,
    /// The region global services (IAM) are signed for in this partition.
    pub global_region: &'static str,
    /// Every region of the partition.
    pub regions: &'static [&'static str],
}

/// The partitions whose ARNs the `iam` crate reads, with their public regions.
pub const PARTITIONS: &[Partition] = &[
    Partition {
        name: "aws",
        global_region: "us-east-1",
        regions: &[
            "af-south-1",
            "ap-east-1",
            "ap-east-2",
            "ap-northeast-1",
            "ap-northeast-2",
            "ap-northeast-3",
            "ap-south-1",
            "ap-south-2",
            "ap-southeast-1",
            "ap-southeast-2",
            "ap-southeast-3",
            "ap-southeast-4",
            "ap-southeast-5",
            "ap-southeast-6",
            "ap-southeast-7",
            "ca-central-1",
            "ca-west-1",
            "eu-central-1",
            "eu-central-2",
            "eu-north-1",
            "eu-south-1",
            "eu-south-2",
            "eu-west-1",
            "eu-west-2",
            "eu-west-3",
            "il-central-1",
            "me-central-1",
            "me-south-1",
            "mx-central-1",
            "sa-east-1",
            "us-east-1",
            "us-east-2",
            "us-west-1",
            "us-west-2",
        ],
    },
    Partition {
        name: "aws-cn",
        global_region: "cn-north-1",
        regions: &["cn-north-1", "cn-northwest-1"],
    },
    Partition {
        name: "aws-us-gov",
        global_region: "us-gov-west-1",
        regions: &["us-gov-east-1", "us-gov-west-1"],
    },
];

/// The partition `region` belongs to, if it is a real region.
pub fn partition_of(region: &str) -> Option<&'static Partition> {
    PARTITIONS.iter().find(|p| p.regions.contains(&region))
}

/// Which regions a service accepts in a credential scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegionRule {
    /// A regional service: any real region.
    Regional,
    /// A global service (IAM): only its partition's signing region (`us-east-1` in `aws`).
    Global,
}

impl RegionRule {
    /// Checks the scope's region: `Ok` when the service accepts it.
    ///
    /// # Errors
    ///
    /// [`Error::wrong_region`](crate::Error::wrong_region) for a region that does not exist
    /// (or, for a global service, is not its partition's signing region).
    pub fn check(self, region: &str) -> Result<(), crate::Error> {
        let accepted = match (self, partition_of(region)) {
            (_, None) => false,
            (RegionRule::Regional, Some(_)) => true,
            (RegionRule::Global, Some(p)) => p.global_region == region,
        };
        if accepted {
            Ok(())
        } else {
            Err(crate::Error::wrong_region())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_regions_only() {
        assert!(RegionRule::Regional.check("us-east-1").is_ok());
        assert!(RegionRule::Regional.check("eu-west-3").is_ok());
        assert!(RegionRule::Regional.check("cn-northwest-1").is_ok());
        for bogus in [
            "zz-bogus-9",
            "",
            "us-east-1 ",
            "US-EAST-1",
            "us-east-99",
            "local",
        ] {
            let e = RegionRule::Regional.check(bogus).unwrap_err();
            assert_eq!(e.code(), "SignatureDoesNotMatch", "{bogus}");
            assert_eq!(e.http_status(), 403);
            assert_eq!(
                e.to_string(),
                "Credential should be scoped to a valid region. "
            );
        }
    }

    #[test]
    fn global_services_take_their_partitions_signing_region() {
        assert!(RegionRule::Global.check("us-east-1").is_ok());
        assert!(RegionRule::Global.check("cn-north-1").is_ok());
        assert!(RegionRule::Global.check("us-gov-west-1").is_ok());
        assert!(RegionRule::Global.check("us-west-2").is_err());
        assert!(RegionRule::Global.check("zz-bogus-9").is_err());
    }

    #[test]
    fn regions_are_listed_once_and_sorted() {
        for p in PARTITIONS {
            assert!(p.regions.windows(2).all(|w| w[0] < w[1]), "{}", p.name);
            assert!(p.regions.contains(&p.global_region), "{}", p.name);
        }
    }
}
