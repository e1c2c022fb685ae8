//! The s3s `S3` trait over `ObjectStore`: every operation of every dialect lands here (OSS and
//! COS requests are verified and translated to their S3 form by `front` first), so the XML,
//! routing and SigV4 of s3s serve all three protocols.

use std::time::SystemTime;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use fnbridge_store::objects::{ObjectKind, ObjectRecord};
use s3s::dto::*;
use s3s::{S3, S3Request, S3Response, S3Result};

use crate::checksum::{Algorithm, Hashers};
use crate::error::{Code, ObjError};
use crate::events::Op;
use crate::front::RequestInfo;
use crate::store::{ObjectStore, PutMeta, ReqCtx};

/// The `S3` implementation.
#[derive(Clone)]
pub struct S3Service {
    pub(crate) store: ObjectStore,
}

fn ctx<T>(req: &S3Request<T>) -> ReqCtx {
    match req.extensions.get::<RequestInfo>() {
        Some(i) => ReqCtx {
            request_id: i.request_id.clone(),
            source_ip: i.source_ip.clone(),
        },
        None => ReqCtx {
            request_id: crate::front::request_id(),
            source_ip: String::new(),
        },
    }
}

/// Whole seconds: oss2 parses listing times only as `…:SS.000Z`.
fn ts(ms: i64) -> Timestamp {
    Timestamp::from(
        SystemTime::UNIX_EPOCH + std::time::Duration::from_secs((ms.max(0) / 1000) as u64),
    )
}

fn etag(rec_etag: &str) -> ETag {
    ETag::Strong(rec_etag.to_string())
}

/// User metadata from the request, bounded.
fn user_meta(store: &ObjectStore, m: Option<Metadata>) -> Result<Vec<(String, String)>, ObjError> {
    let mut v: Vec<(String, String)> = m
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    v.sort();
    let size: usize = v.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > store.limits().max_meta_bytes {
        return Err(ObjError::new(
            Code::MetadataTooLarge,
            format!(
                "user metadata is {size} bytes, more than the {}-byte limit",
                store.limits().max_meta_bytes
            ),
        ));
    }
    Ok(v)
}

fn meta_out(rec: &ObjectRecord) -> Option<Metadata> {
    if rec.meta.is_empty() {
        return None;
    }
    Some(rec.meta.iter().cloned().collect())
}

/// The checksums a request declares: in headers now, or promised in trailers.
fn requested(
    algorithm: Option<&ChecksumAlgorithm>,
    values: [(Algorithm, Option<&String>); 4],
    headers: &http::HeaderMap,
) -> Vec<Algorithm> {
    let mut out: Vec<Algorithm> = values
        .iter()
        .filter(|(_, v)| v.is_some())
        .map(|(a, _)| *a)
        .collect();
    if let Some(a) =
        algorithm.and_then(|a| Algorithm::from_header(&format!("x-amz-checksum-{}", a.as_str())))
    {
        out.push(a);
    }
    if let Some(t) = headers.get("x-amz-trailer").and_then(|v| v.to_str().ok())
        && let Some(a) = Algorithm::from_header(t.trim())
    {
        out.push(a);
    }
    out.dedup();
    out
}

/// Verifies Content-MD5 and the `x-amz-checksum-*` values (from headers or trailers) against
/// what was computed while writing.
fn verify(
    w: &crate::data::Written,
    content_md5: Option<&str>,
    values: [(Algorithm, Option<&String>); 4],
    trailers: Option<&s3s::TrailingHeaders>,
) -> Result<(), ObjError> {
    if let Some(md5) = content_md5 {
        let Ok(want) = B64.decode(md5.trim()) else {
            return Err(ObjError::new(
                Code::InvalidDigest,
                "the Content-MD5 is not valid base64",
            ));
        };
        if want.len() != 16 {
            return Err(ObjError::new(
                Code::InvalidDigest,
                "the Content-MD5 is not 16 bytes",
            ));
        }
        if want != w.md5 {
            return Err(ObjError::new(
                Code::BadDigest,
                "the Content-MD5 you specified did not match what was received",
            ));
        }
    }
    let check = |a: Algorithm, want: &str| -> Result<(), ObjError> {
        match w.hashes.value(a) {
            Some(got) if got == want.trim() => Ok(()),
            Some(_) => Err(ObjError::new(
                Code::BadDigest,
                format!(
                    "the {} you specified did not match the calculated checksum",
                    a.header()
                ),
            )),
            None => Ok(()),
        }
    };
    for (a, v) in values {
        if let Some(v) = v {
            check(a, v)?;
        }
    }
    if let Some(t) = trailers
        && let Some(pairs) = t.read(|h| {
            h.iter()
                .filter_map(|(k, v)| {
                    Some((
                        Algorithm::from_header(k.as_str())?,
                        v.to_str().ok()?.to_string(),
                    ))
                })
                .collect::<Vec<_>>()
        })
    {
        for (a, v) in pairs {
            check(a, &v)?;
        }
    }
    Ok(())
}

fn copy_source(cs: &CopySource) -> Result<(String, String), ObjError> {
    match cs {
        CopySource::Bucket { bucket, key, .. } => Ok((bucket.to_string(), key.to_string())),
        _ => Err(ObjError::new(
            Code::InvalidArgument,
            "copy sources must name a bucket and key",
        )),
    }
}

/// A listing page's objects and common prefixes as S3 lists them, keys and prefixes passed
/// through `enc` (URL-encoding for `encoding-type=url`).
fn listed(
    objects: Vec<ObjectRecord>,
    prefixes: Vec<String>,
    enc: &dyn Fn(String) -> String,
) -> (Vec<Object>, Vec<CommonPrefix>) {
    let objects = objects
        .into_iter()
        .map(|o| Object {
            key: Some(enc(o.key)),
            e_tag: Some(etag(&o.etag)),
            last_modified: Some(ts(o.modified_ms)),
            size: Some(o.size as i64),
            storage_class: Some(ObjectStorageClass::from_static("STANDARD")),
            ..Default::default()
        })
        .collect();
    let prefixes = prefixes
        .into_iter()
        .map(|p| CommonPrefix {
            prefix: Some(enc(p)),
        })
        .collect();
    (objects, prefixes)
}

fn url_encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, crate::sig::URI_ENCODE_SLASH_SAFE).to_string()
}

fn cond_failed(code: Code) -> ObjError {
    let msg = if code == Code::NotModified {
        "not modified"
    } else {
        "at least one of the preconditions you specified did not hold"
    };
    ObjError::new(code, msg)
}

/// RFC 9110 conditional request evaluation for GET and HEAD.
fn check_conditions(
    rec: &ObjectRecord,
    if_match: Option<&ETagCondition>,
    if_none_match: Option<&ETagCondition>,
    if_modified_since: Option<&Timestamp>,
    if_unmodified_since: Option<&Timestamp>,
) -> Result<(), ObjError> {
    let matches = |c: &ETagCondition| match c {
        ETagCondition::Any => true,
        ETagCondition::ETag(e) => e.value().eq_ignore_ascii_case(&rec.etag),
    };
    let modified = time::OffsetDateTime::from(ts(rec.modified_ms)).unix_timestamp();
    if let Some(c) = if_match {
        if !matches(c) {
            return Err(cond_failed(Code::PreconditionFailed));
        }
    } else if let Some(t) = if_unmodified_since
        && modified > time::OffsetDateTime::from(t.clone()).unix_timestamp()
    {
        return Err(cond_failed(Code::PreconditionFailed));
    }
    if let Some(c) = if_none_match {
        if matches(c) {
            return Err(cond_failed(Code::NotModified));
        }
    } else if let Some(t) = if_modified_since
        && modified <= time::OffsetDateTime::from(t.clone()).unix_timestamp()
    {
        return Err(cond_failed(Code::NotModified));
    }
    Ok(())
}

#[async_trait::async_trait]
impl S3 for S3Service {
    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        self.store.create_bucket(&req.input.bucket).await?;
        Ok(S3Response::new(CreateBucketOutput {
            location: Some(format!("/{}", req.input.bucket)),
        }))
    }

    async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        self.store.delete_bucket(&req.input.bucket).await?;
        Ok(S3Response::new(DeleteBucketOutput {}))
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        self.store.bucket(&req.input.bucket).await?;
        Ok(S3Response::new(HeadBucketOutput {
            bucket_region: Some(self.store.identity().region.clone()),
            ..Default::default()
        }))
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        self.store.bucket(&req.input.bucket).await?;
        Ok(S3Response::new(GetBucketLocationOutput {
            location_constraint: Some(BucketLocationConstraint::from(
                self.store.identity().region.clone(),
            )),
        }))
    }

    async fn list_buckets(
        &self,
        _req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        let buckets = self.store.list_buckets().await?;
        Ok(S3Response::new(ListBucketsOutput {
            buckets: Some(
                buckets
                    .into_iter()
                    .map(|b| Bucket {
                        name: Some(b.name),
                        creation_date: Some(ts(b.created_ms)),
                        bucket_region: None,
                    })
                    .collect(),
            ),
            owner: Some(Owner {
                id: Some(self.store.identity().account_id.clone()),
                display_name: Some(self.store.identity().account_id.clone()),
            }),
            ..Default::default()
        }))
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let c = ctx(&req);
        let i = req.input;
        let values = [
            (Algorithm::Crc32, i.checksum_crc32.as_ref()),
            (Algorithm::Crc32c, i.checksum_crc32c.as_ref()),
            (Algorithm::Sha1, i.checksum_sha1.as_ref()),
            (Algorithm::Sha256, i.checksum_sha256.as_ref()),
        ];
        let algos = requested(i.checksum_algorithm.as_ref(), values, &req.headers);
        let meta = PutMeta {
            content_type: i.content_type.clone(),
            meta: user_meta(&self.store, i.metadata.clone())?,
        };
        let limit = self.store.limits().max_object_bytes;
        if i.content_length.is_some_and(|l| l as u64 > limit) {
            return Err(ObjError::new(
                Code::EntityTooLarge,
                format!("objects are at most {limit} bytes"),
            )
            .into());
        }
        let body = i.body.unwrap_or_else(|| {
            StreamingBlob::wrap(futures::stream::empty::<Result<bytes::Bytes, std::io::Error>>())
        });
        let w = self
            .store
            .write_data(&i.bucket, &i.key, body, limit, Hashers::with(&algos))
            .await?;
        if let Err(e) = verify(
            &w,
            i.content_md5.as_deref(),
            values,
            req.trailing_headers.as_ref(),
        ) {
            self.store.discard(w).await;
            return Err(e.into());
        }
        let sums: Vec<(Algorithm, String)> = algos
            .iter()
            .filter_map(|a| Some((*a, w.hashes.value(*a)?)))
            .collect();
        let rec = self
            .store
            .commit_put(&i.bucket, &i.key, w, meta, Op::Put, ObjectKind::Normal, &c)
            .await?;
        let mut out = PutObjectOutput {
            e_tag: Some(etag(&rec.etag)),
            ..Default::default()
        };
        for (a, v) in sums {
            match a {
                Algorithm::Crc32 => out.checksum_crc32 = Some(v),
                Algorithm::Crc32c => out.checksum_crc32c = Some(v),
                Algorithm::Sha1 => out.checksum_sha1 = Some(v),
                Algorithm::Sha256 => out.checksum_sha256 = Some(v),
            }
        }
        let mut resp = S3Response::new(out);
        crate::front::object_headers(&mut resp.headers, &rec);
        Ok(resp)
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        let i = req.input;
        let (rec, mut file) = self.store.open_object(&i.bucket, &i.key).await?;
        check_conditions(
            &rec,
            i.if_match.as_ref(),
            i.if_none_match.as_ref(),
            i.if_modified_since.as_ref(),
            i.if_unmodified_since.as_ref(),
        )?;
        let range = match &i.range {
            Some(r) => Some(r.check(rec.size).map_err(|_| {
                ObjError::new(Code::InvalidRange, "the requested range is not satisfiable")
            })?),
            None => None,
        };
        let (start, end) = match &range {
            Some(r) => (r.start, r.end),
            None => (0, rec.size),
        };
        if start > 0 {
            use tokio::io::AsyncSeekExt;
            file.seek(std::io::SeekFrom::Start(start))
                .await
                .map_err(|e| ObjError::new(Code::InternalError, format!("object data: {e}")))?;
        }
        let stream = crate::data::tokio_util_like::limited(file, end - start);
        let out = GetObjectOutput {
            body: Some(StreamingBlob::wrap(stream)),
            content_length: Some((end - start) as i64),
            content_range: range
                .as_ref()
                .map(|r| format!("bytes {}-{}/{}", r.start, r.end.saturating_sub(1), rec.size)),
            content_type: Some(
                i.response_content_type
                    .clone()
                    .unwrap_or_else(|| rec.content_type.clone()),
            ),
            content_disposition: i.response_content_disposition.clone(),
            cache_control: i.response_cache_control.clone(),
            content_encoding: i.response_content_encoding.clone(),
            content_language: i.response_content_language.clone(),
            e_tag: Some(etag(&rec.etag)),
            last_modified: Some(ts(rec.modified_ms)),
            metadata: meta_out(&rec),
            accept_ranges: Some("bytes".into()),
            ..Default::default()
        };
        let mut resp = S3Response::new(out);
        if range.is_some() {
            resp.status = Some(http::StatusCode::PARTIAL_CONTENT);
        }
        crate::front::object_headers(&mut resp.headers, &rec);
        if range.is_some() {
            // A CRC of the whole object would not match a part of it.
            resp.headers.remove("x-oss-hash-crc64ecma");
        }
        Ok(resp)
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let i = req.input;
        let rec = self.store.head(&i.bucket, &i.key).await?;
        check_conditions(
            &rec,
            i.if_match.as_ref(),
            i.if_none_match.as_ref(),
            i.if_modified_since.as_ref(),
            i.if_unmodified_since.as_ref(),
        )?;
        let out = HeadObjectOutput {
            content_length: Some(rec.size as i64),
            content_type: Some(rec.content_type.clone()),
            e_tag: Some(etag(&rec.etag)),
            last_modified: Some(ts(rec.modified_ms)),
            metadata: meta_out(&rec),
            accept_ranges: Some("bytes".into()),
            ..Default::default()
        };
        let mut resp = S3Response::new(out);
        crate::front::object_headers(&mut resp.headers, &rec);
        Ok(resp)
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let c = ctx(&req);
        let i = req.input;
        crate::store::check_key(&i.key)?;
        self.store
            .delete(&i.bucket, vec![i.key.clone()], Op::Delete, &c)
            .await?;
        Ok(S3Response::new(DeleteObjectOutput::default()))
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let c = ctx(&req);
        let i = req.input;
        let max = self.store.limits().max_delete_keys;
        if i.delete.objects.len() > max {
            return Err(ObjError::new(
                Code::MalformedXML,
                format!("at most {max} keys may be deleted in one request"),
            )
            .into());
        }
        let mut keys = Vec::new();
        let mut errors = Vec::new();
        for o in &i.delete.objects {
            match crate::store::check_key(&o.key) {
                Ok(()) => keys.push(o.key.clone()),
                Err(e) => errors.push(Error {
                    code: Some(e.code.as_str().into()),
                    key: Some(o.key.clone()),
                    message: Some(e.message),
                    version_id: None,
                }),
            }
        }
        // Deleting a key that is not there succeeds, as in S3 and OSS.
        self.store
            .delete(&i.bucket, keys.clone(), Op::DeleteObjects, &c)
            .await?;
        let quiet = i.delete.quiet.unwrap_or(false);
        Ok(S3Response::new(DeleteObjectsOutput {
            deleted: (!quiet).then(|| {
                keys.into_iter()
                    .map(|k| DeletedObject {
                        key: Some(k),
                        ..Default::default()
                    })
                    .collect()
            }),
            errors: (!errors.is_empty()).then_some(errors),
            ..Default::default()
        }))
    }

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        let c = ctx(&req);
        let i = req.input;
        let (sb, sk) = copy_source(&i.copy_source)?;
        crate::store::check_key(&i.key)?;
        self.store.bucket(&i.bucket).await?;
        let (src, w) = self.store.copy_data(&sb, &sk, None, false).await?;
        let replace = i
            .metadata_directive
            .as_ref()
            .is_some_and(|d| d.as_str().eq_ignore_ascii_case("REPLACE"));
        let meta = if replace {
            PutMeta {
                content_type: i.content_type.clone(),
                meta: user_meta(&self.store, i.metadata.clone())?,
            }
        } else {
            PutMeta {
                content_type: Some(src.content_type.clone()),
                meta: src.meta.clone(),
            }
        };
        let rec = self
            .store
            .commit_put(&i.bucket, &i.key, w, meta, Op::Copy, ObjectKind::Normal, &c)
            .await?;
        Ok(S3Response::new(CopyObjectOutput {
            copy_object_result: Some(CopyObjectResult {
                e_tag: Some(etag(&rec.etag)),
                last_modified: Some(ts(rec.modified_ms)),
                ..Default::default()
            }),
            ..Default::default()
        }))
    }

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        let i = req.input;
        let prefix = i.prefix.clone().unwrap_or_default();
        let delimiter = i.delimiter.clone().unwrap_or_default();
        let marker = i.marker.clone().unwrap_or_default();
        let max = i.max_keys.unwrap_or(1000).clamp(0, 1000) as usize;
        let page = self
            .store
            .list(&i.bucket, &prefix, &delimiter, &marker, max)
            .await?;
        let url = i
            .encoding_type
            .as_ref()
            .is_some_and(|e| e.as_str() == "url");
        let enc = |s: String| if url { url_encode(&s) } else { s };
        let (contents, common_prefixes) = listed(page.objects, page.common_prefixes, &enc);
        Ok(S3Response::new(ListObjectsOutput {
            name: Some(i.bucket.clone()),
            prefix: Some(enc(prefix)),
            marker: Some(enc(marker)),
            max_keys: Some(max as i32),
            delimiter: (!delimiter.is_empty()).then(|| enc(delimiter)),
            is_truncated: Some(page.truncated),
            next_marker: page
                .truncated
                .then(|| page.next_marker.clone().map(enc))
                .flatten(),
            contents: Some(contents),
            common_prefixes: Some(common_prefixes),
            encoding_type: i.encoding_type.clone(),
            ..Default::default()
        }))
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        let i = req.input;
        let prefix = i.prefix.clone().unwrap_or_default();
        let delimiter = i.delimiter.clone().unwrap_or_default();
        // The continuation token is the last key or prefix returned, hex-encoded so that any
        // key survives the round trip.
        let after = match &i.continuation_token {
            Some(t) => String::from_utf8(hex::decode(t).map_err(|_| {
                ObjError::new(Code::InvalidArgument, "the continuation token is not valid")
            })?)
            .map_err(|_| {
                ObjError::new(Code::InvalidArgument, "the continuation token is not valid")
            })?,
            None => i.start_after.clone().unwrap_or_default(),
        };
        let max = i.max_keys.unwrap_or(1000).clamp(0, 1000) as usize;
        let page = self
            .store
            .list(&i.bucket, &prefix, &delimiter, &after, max)
            .await?;
        let url = i
            .encoding_type
            .as_ref()
            .is_some_and(|e| e.as_str() == "url");
        let enc = |s: String| if url { url_encode(&s) } else { s };
        let count = page.objects.len() + page.common_prefixes.len();
        let (contents, common_prefixes) = listed(page.objects, page.common_prefixes, &enc);
        Ok(S3Response::new(ListObjectsV2Output {
            name: Some(i.bucket.clone()),
            prefix: Some(enc(prefix)),
            max_keys: Some(max as i32),
            key_count: Some(count as i32),
            delimiter: (!delimiter.is_empty()).then(|| enc(delimiter)),
            is_truncated: Some(page.truncated),
            continuation_token: i.continuation_token.clone(),
            next_continuation_token: page
                .truncated
                .then(|| page.next_marker.as_ref().map(hex::encode))
                .flatten(),
            start_after: i.start_after.clone().map(enc),
            contents: Some(contents),
            common_prefixes: Some(common_prefixes),
            encoding_type: i.encoding_type.clone(),
            ..Default::default()
        }))
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let c = ctx(&req);
        let i = req.input;
        let meta = PutMeta {
            content_type: i.content_type.clone(),
            meta: user_meta(&self.store, i.metadata.clone())?,
        };
        let id = self.store.initiate(&i.bucket, &i.key, meta, &c).await?;
        Ok(S3Response::new(CreateMultipartUploadOutput {
            bucket: Some(i.bucket.clone()),
            key: Some(i.key.clone()),
            upload_id: Some(id),
            ..Default::default()
        }))
    }

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        let c = ctx(&req);
        let i = req.input;
        let n = part_number(&self.store, i.part_number)?;
        let upload = self.store.upload(&i.bucket, &i.upload_id).await?;
        let values = [
            (Algorithm::Crc32, i.checksum_crc32.as_ref()),
            (Algorithm::Crc32c, i.checksum_crc32c.as_ref()),
            (Algorithm::Sha1, i.checksum_sha1.as_ref()),
            (Algorithm::Sha256, i.checksum_sha256.as_ref()),
        ];
        let algos = requested(i.checksum_algorithm.as_ref(), values, &req.headers);
        let body = i.body.unwrap_or_else(|| {
            StreamingBlob::wrap(futures::stream::empty::<Result<bytes::Bytes, std::io::Error>>())
        });
        let w = self
            .store
            .write_part_data(
                &i.bucket,
                &upload.key,
                body,
                self.store.limits().max_part_bytes,
                Hashers::with(&algos),
            )
            .await?;
        if let Err(e) = verify(
            &w,
            i.content_md5.as_deref(),
            values,
            req.trailing_headers.as_ref(),
        ) {
            self.store.discard(w).await;
            return Err(e.into());
        }
        let mut out = UploadPartOutput::default();
        for a in &algos {
            let v = w.hashes.value(*a);
            match a {
                Algorithm::Crc32 => out.checksum_crc32 = v,
                Algorithm::Crc32c => out.checksum_crc32c = v,
                Algorithm::Sha1 => out.checksum_sha1 = v,
                Algorithm::Sha256 => out.checksum_sha256 = v,
            }
        }
        let crc = w.crc64;
        let part = self
            .store
            .commit_part(&upload, n, w, Op::UploadPart, &c)
            .await?;
        out.e_tag = Some(etag(&part.etag));
        let mut resp = S3Response::new(out);
        if let Ok(v) = http::HeaderValue::from_str(&crc.to_string()) {
            resp.headers.insert("x-oss-hash-crc64ecma", v);
        }
        Ok(resp)
    }

    async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        let c = ctx(&req);
        let i = req.input;
        let n = part_number(&self.store, i.part_number)?;
        let upload = self.store.upload(&i.bucket, &i.upload_id).await?;
        let (sb, sk) = copy_source(&i.copy_source)?;
        let src = self.store.head(&sb, &sk).await?;
        let range = match &i.copy_source_range {
            Some(r) => {
                let r = Range::parse(r).map_err(|_| {
                    ObjError::new(
                        Code::InvalidArgument,
                        "x-amz-copy-source-range is not valid",
                    )
                })?;
                Some(r.check(src.size).map_err(|_| {
                    ObjError::new(Code::InvalidRange, "the copy range is not satisfiable")
                })?)
            }
            None => None,
        };
        let (_, w) = self.store.copy_data(&sb, &sk, range, true).await?;
        let part = self
            .store
            .commit_part(&upload, n, w, Op::UploadPartCopy, &c)
            .await?;
        Ok(S3Response::new(UploadPartCopyOutput {
            copy_part_result: Some(CopyPartResult {
                e_tag: Some(etag(&part.etag)),
                last_modified: Some(ts(part.modified_ms)),
                ..Default::default()
            }),
            ..Default::default()
        }))
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let c = ctx(&req);
        let i = req.input;
        let listed: Vec<(u32, String)> = i
            .multipart_upload
            .and_then(|m| m.parts)
            .unwrap_or_default()
            .into_iter()
            .map(|p| {
                (
                    p.part_number.unwrap_or(0).max(0) as u32,
                    p.e_tag.map(|e| e.value().to_string()).unwrap_or_default(),
                )
            })
            .collect();
        let rec = self
            .store
            .complete(&i.bucket, &i.key, &i.upload_id, listed, &c)
            .await?;
        let mut resp = S3Response::new(CompleteMultipartUploadOutput {
            bucket: Some(i.bucket.clone()),
            key: Some(i.key.clone()),
            e_tag: Some(etag(&rec.etag)),
            location: Some(format!("/{}/{}", i.bucket, i.key)),
            ..Default::default()
        });
        crate::front::object_headers(&mut resp.headers, &rec);
        Ok(resp)
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let c = ctx(&req);
        let i = req.input;
        self.store.abort(&i.bucket, &i.upload_id, &c).await?;
        Ok(S3Response::new(AbortMultipartUploadOutput::default()))
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        let i = req.input;
        let max = i.max_uploads.unwrap_or(1000).clamp(1, 1000) as usize;
        let prefix = i.prefix.clone().unwrap_or_default();
        let mut ups = self
            .store
            .uploads(
                &i.bucket,
                &prefix,
                i.key_marker.as_deref().unwrap_or(""),
                i.upload_id_marker.as_deref().unwrap_or(""),
                max + 1,
            )
            .await?;
        let truncated = ups.len() > max;
        ups.truncate(max);
        let last = ups.last().map(|u| (u.key.clone(), u.upload_id.clone()));
        Ok(S3Response::new(ListMultipartUploadsOutput {
            bucket: Some(i.bucket.clone()),
            prefix: Some(prefix),
            key_marker: i.key_marker.clone(),
            upload_id_marker: i.upload_id_marker.clone(),
            max_uploads: Some(max as i32),
            is_truncated: Some(truncated),
            next_key_marker: truncated.then(|| last.clone().map(|l| l.0)).flatten(),
            next_upload_id_marker: truncated.then(|| last.map(|l| l.1)).flatten(),
            uploads: Some(
                ups.into_iter()
                    .map(|u| MultipartUpload {
                        key: Some(u.key),
                        upload_id: Some(u.upload_id),
                        initiated: Some(ts(u.initiated_ms)),
                        storage_class: Some(StorageClass::from_static("STANDARD")),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }))
    }

    async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        let i = req.input;
        let upload = self.store.upload(&i.bucket, &i.upload_id).await?;
        let max = i.max_parts.unwrap_or(1000).clamp(1, 1000) as usize;
        let after = i.part_number_marker.unwrap_or(0).max(0) as u32;
        let mut parts = self.store.parts(&i.upload_id, after, max + 1).await?;
        let truncated = parts.len() > max;
        parts.truncate(max);
        Ok(S3Response::new(ListPartsOutput {
            bucket: Some(i.bucket.clone()),
            key: Some(upload.key),
            upload_id: Some(i.upload_id.clone()),
            max_parts: Some(max as i32),
            part_number_marker: i.part_number_marker,
            is_truncated: Some(truncated),
            next_part_number_marker: parts.last().map(|p| p.part_number as i32),
            parts: Some(
                parts
                    .into_iter()
                    .map(|p| Part {
                        part_number: Some(p.part_number as i32),
                        e_tag: Some(etag(&p.etag)),
                        size: Some(p.size as i64),
                        last_modified: Some(ts(p.modified_ms)),
                        ..Default::default()
                    })
                    .collect(),
            ),
            storage_class: Some(StorageClass::from_static("STANDARD")),
            ..Default::default()
        }))
    }
}

fn part_number(store: &ObjectStore, n: i32) -> Result<u32, ObjError> {
    let max = store.limits().max_parts;
    if n < 1 || n as u32 > max {
        return Err(ObjError::new(
            Code::InvalidArgument,
            format!("part numbers run from 1 to {max}, got {n}"),
        ));
    }
    Ok(n as u32)
}
