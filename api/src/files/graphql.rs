//! 私有文件 over GraphQL: `uploadFile` (multipart).

use async_graphql::{Context, Enum, InputObject, Object, SimpleObject, Upload};

use super::model;
use super::service;
use crate::kit::gql::{StateExt, read_upload};
use crate::rbac::graphql::ActorExt;

/// 用途 what a private file is for
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum FilePurpose {
    /// a repair report or its result
    WorkOrder,
    /// owner feedback
    Feedback,
    /// a maintenance record (staff only)
    Maintenance,
    /// an employee's photo or a certificate scan (staff only)
    Staff,
}

impl From<FilePurpose> for model::Purpose {
    fn from(p: FilePurpose) -> Self {
        match p {
            FilePurpose::WorkOrder => model::Purpose::WorkOrder,
            FilePurpose::Feedback => model::Purpose::Feedback,
            FilePurpose::Maintenance => model::Purpose::Maintenance,
            FilePurpose::Staff => model::Purpose::Staff,
        }
    }
}

/// A photo to upload (multipart request, the GraphQL multipart spec).
#[derive(InputObject)]
pub struct UploadFileInput {
    /// a PNG or JPEG image within the upload size limit
    pub file: Upload,
    /// what it is for
    pub purpose: FilePurpose,
    /// makes a retry apply once
    pub client_mutation_id: Option<String>,
}

/// The uploaded file's key: name it in the record's `photos`.
#[derive(SimpleObject)]
pub struct UploadFilePayload {
    /// the `clientMutationId` of the input, echoed
    pub client_mutation_id: Option<String>,
    /// the storage key (only the uploader may attach it to a record)
    pub key: String,
    /// a URL that shows the file to the uploader for five minutes
    pub url: String,
}

#[derive(Default)]
pub struct FileMutation;

#[Object]
impl FileMutation {
    /// Uploads a private photo (repairs, feedback, maintenance): stored privately, served
    /// only through short-lived signed URLs to those who may read its record.
    async fn upload_file(&self, ctx: &Context<'_>, input: UploadFileInput) -> async_graphql::Result<UploadFilePayload> {
        let actor = ctx.actor()?;
        let retry = ctx.retry(input.client_mutation_id.as_deref())?;
        let bytes = read_upload(ctx, &input.file)?;
        let key = service::upload(ctx.state(), &actor, &retry, input.purpose.into(), bytes).await?;
        let url = service::signed_url(ctx.state(), &key);
        Ok(UploadFilePayload { client_mutation_id: input.client_mutation_id, key, url })
    }
}
