//! `gcrec athena-ddl`: discover the export's shape, print `gcrec_fetch::athena`'s table.

use anyhow::Result;
use chrono::Datelike;
use gcrec_fetch::athena::{create_table, discover};
use gcrec_fetch::layout::Padding;

use crate::cli::AthenaDdlArgs;
use crate::exit::{Outcome, UsageError};

pub async fn run(args: AthenaDdlArgs) -> Result<Outcome> {
    if !args.source.starts_with("s3://") {
        return Err(UsageError(format!(
            "{}: Athena reads S3: give s3://BUCKET[/PREFIX]",
            args.source
        ))
        .into());
    }
    let (bucket, _) = gcrec_fetch::source::parse_s3_url(&args.source)?;
    let opened = crate::aws::open_source(&args.source, &args.aws).await?;
    let found = discover(&*opened.source, &opened.base_prefix).await?;
    if found.padding == Padding::Mixed {
        eprintln!(
            "gcrec: warning: the export spells partitions both padded and unpadded; the table \
             has no partition projection (see the comment in the statement)"
        );
    }
    let last = args
        .last_year
        .unwrap_or_else(|| chrono::Utc::now().year() + 1);
    print!("{}", create_table(&args.table, &bucket, &found, last));
    Ok(Outcome::Success)
}
