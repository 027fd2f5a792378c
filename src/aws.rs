//! AWS naming facts that depend on the region: the partition, the DNS suffix
//! of ECR registries, and ARNs.

use std::fmt;

/// An ECR registry: one account in one region.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegistryRef {
    pub account_id: String,
    pub region: String,
}

impl RegistryRef {
    pub fn new(account_id: impl Into<String>, region: impl Into<String>) -> Self {
        Self {
            account_id: account_id.into(),
            region: region.into(),
        }
    }

    pub fn partition(&self) -> Partition {
        Partition::of_region(&self.region)
    }

    /// The registry host image references use, e.g.
    /// `123456789012.dkr.ecr.eu-west-2.amazonaws.com`.
    pub fn host(&self) -> String {
        format!(
            "{}.dkr.ecr.{}.{}",
            self.account_id,
            self.region,
            self.partition().dns_suffix()
        )
    }

    /// The ARN of one repository. IAM matches repository ARNs only with the
    /// `repository/` segment; without it a policy silently grants nothing.
    pub fn repository_arn(&self, repository: &str) -> String {
        format!(
            "arn:{}:ecr:{}:{}:repository/{}",
            self.partition(),
            self.region,
            self.account_id,
            repository
        )
    }
}

impl fmt::Display for RegistryRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.host())
    }
}

/// The AWS partition a region belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Partition {
    Aws,
    AwsCn,
    AwsUsGov,
    /// The AWS European Sovereign Cloud.
    AwsEusc,
    AwsIso,
    AwsIsoB,
    AwsIsoE,
    AwsIsoF,
}

impl Partition {
    /// By region name, as the AWS SDKs' partition table matches them.
    pub fn of_region(region: &str) -> Self {
        let prefixes = [
            ("cn-", Partition::AwsCn),
            ("us-gov-", Partition::AwsUsGov),
            ("eusc-", Partition::AwsEusc),
            ("us-iso-", Partition::AwsIso),
            ("us-isob-", Partition::AwsIsoB),
            ("eu-isoe-", Partition::AwsIsoE),
            ("us-isof-", Partition::AwsIsoF),
        ];
        prefixes
            .into_iter()
            .find(|(prefix, _)| region.starts_with(prefix))
            .map_or(Partition::Aws, |(_, partition)| partition)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Partition::Aws => "aws",
            Partition::AwsCn => "aws-cn",
            Partition::AwsUsGov => "aws-us-gov",
            Partition::AwsEusc => "aws-eusc",
            Partition::AwsIso => "aws-iso",
            Partition::AwsIsoB => "aws-iso-b",
            Partition::AwsIsoE => "aws-iso-e",
            Partition::AwsIsoF => "aws-iso-f",
        }
    }

    pub fn dns_suffix(self) -> &'static str {
        match self {
            Partition::Aws | Partition::AwsUsGov => "amazonaws.com",
            Partition::AwsCn => "amazonaws.com.cn",
            Partition::AwsEusc => "amazonaws.eu",
            Partition::AwsIso => "c2s.ic.gov",
            Partition::AwsIsoB => "sc2s.sgov.gov",
            Partition::AwsIsoE => "cloud.adc-e.uk",
            Partition::AwsIsoF => "csp.hci.ic.gov",
        }
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_follow_the_region() {
        let cases = [
            (
                "eu-west-2",
                "aws",
                "111122223333.dkr.ecr.eu-west-2.amazonaws.com",
            ),
            (
                "cn-north-1",
                "aws-cn",
                "111122223333.dkr.ecr.cn-north-1.amazonaws.com.cn",
            ),
            (
                "us-gov-west-1",
                "aws-us-gov",
                "111122223333.dkr.ecr.us-gov-west-1.amazonaws.com",
            ),
            (
                "eusc-de-east-1",
                "aws-eusc",
                "111122223333.dkr.ecr.eusc-de-east-1.amazonaws.eu",
            ),
            (
                "us-iso-east-1",
                "aws-iso",
                "111122223333.dkr.ecr.us-iso-east-1.c2s.ic.gov",
            ),
            (
                "us-isob-east-1",
                "aws-iso-b",
                "111122223333.dkr.ecr.us-isob-east-1.sc2s.sgov.gov",
            ),
            (
                "eu-isoe-west-1",
                "aws-iso-e",
                "111122223333.dkr.ecr.eu-isoe-west-1.cloud.adc-e.uk",
            ),
            (
                "us-isof-south-1",
                "aws-iso-f",
                "111122223333.dkr.ecr.us-isof-south-1.csp.hci.ic.gov",
            ),
        ];
        for (region, partition, host) in cases {
            let registry = RegistryRef::new("111122223333", region);
            assert_eq!(registry.partition().as_str(), partition, "{region}");
            assert_eq!(registry.host(), host, "{region}");
            assert_eq!(
                registry.repository_arn("upbound/provider-aws-s3"),
                format!(
                    "arn:{partition}:ecr:{region}:111122223333:repository/upbound/provider-aws-s3"
                )
            );
        }
    }
}
