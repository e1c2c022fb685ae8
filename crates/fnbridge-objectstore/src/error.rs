//! `ObjError`: every refusal of the object store, with its protocol code. Mapped to the wire
//! in one place per dialect: `to_s3` for s3s (S3 XML), `Dialect::code` for the names OSS and
//! COS use where they differ from S3's.

use http::StatusCode;

/// Error codes, named as S3 names them (the OSS and COS names are derived in `Dialect::code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    AccessDenied,
    BadDigest,
    BucketAlreadyExists,
    BucketNotEmpty,
    EntityTooLarge,
    EntityTooSmall,
    IncompleteBody,
    InsufficientStorage,
    InternalError,
    InvalidAccessKeyId,
    InvalidArgument,
    InvalidBucketName,
    InvalidDigest,
    InvalidObjectName,
    InvalidPart,
    InvalidPartOrder,
    InvalidRange,
    InvalidRequest,
    KeyTooLong,
    MalformedXML,
    MetadataTooLarge,
    NoSuchBucket,
    NoSuchKey,
    NoSuchUpload,
    NotImplemented,
    NotModified,
    ObjectNotAppendable,
    OperationAborted,
    PositionNotEqualToLength,
    PreconditionFailed,
    RequestTimeTooSkewed,
    SignatureDoesNotMatch,
    SlowDown,
    TooManyBuckets,
}

impl Code {
    pub fn status(self) -> StatusCode {
        use Code::*;
        match self {
            AccessDenied | InvalidAccessKeyId | SignatureDoesNotMatch | RequestTimeTooSkewed => {
                StatusCode::FORBIDDEN
            }
            NoSuchBucket | NoSuchKey | NoSuchUpload => StatusCode::NOT_FOUND,
            BucketAlreadyExists
            | BucketNotEmpty
            | OperationAborted
            | PositionNotEqualToLength
            | ObjectNotAppendable => StatusCode::CONFLICT,
            PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            NotModified => StatusCode::NOT_MODIFIED,
            InvalidRange => StatusCode::RANGE_NOT_SATISFIABLE,
            InsufficientStorage => StatusCode::INSUFFICIENT_STORAGE,
            InternalError => StatusCode::INTERNAL_SERVER_ERROR,
            NotImplemented => StatusCode::NOT_IMPLEMENTED,
            SlowDown => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// The S3 name of the code.
    pub fn as_str(self) -> &'static str {
        use Code::*;
        match self {
            AccessDenied => "AccessDenied",
            BadDigest => "BadDigest",
            BucketAlreadyExists => "BucketAlreadyExists",
            BucketNotEmpty => "BucketNotEmpty",
            EntityTooLarge => "EntityTooLarge",
            EntityTooSmall => "EntityTooSmall",
            IncompleteBody => "IncompleteBody",
            InsufficientStorage => "InsufficientStorage",
            InternalError => "InternalError",
            InvalidAccessKeyId => "InvalidAccessKeyId",
            InvalidArgument => "InvalidArgument",
            InvalidBucketName => "InvalidBucketName",
            InvalidDigest => "InvalidDigest",
            InvalidObjectName => "InvalidObjectName",
            InvalidPart => "InvalidPart",
            InvalidPartOrder => "InvalidPartOrder",
            InvalidRange => "InvalidRange",
            InvalidRequest => "InvalidRequest",
            KeyTooLong => "KeyTooLongError",
            MalformedXML => "MalformedXML",
            MetadataTooLarge => "MetadataTooLarge",
            NoSuchBucket => "NoSuchBucket",
            NoSuchKey => "NoSuchKey",
            NoSuchUpload => "NoSuchUpload",
            NotImplemented => "NotImplemented",
            NotModified => "NotModified",
            ObjectNotAppendable => "ObjectNotAppendable",
            OperationAborted => "OperationAborted",
            PositionNotEqualToLength => "PositionNotEqualToLength",
            PreconditionFailed => "PreconditionFailed",
            RequestTimeTooSkewed => "RequestTimeTooSkewed",
            SignatureDoesNotMatch => "SignatureDoesNotMatch",
            SlowDown => "SlowDown",
            TooManyBuckets => "TooManyBuckets",
        }
    }
}

/// A refusal: code, message, and what the error body names.
#[derive(Debug, Clone)]
pub struct ObjError {
    pub code: Code,
    pub message: String,
    pub bucket: Option<String>,
    pub key: Option<String>,
    /// Extra response headers (`x-oss-next-append-position` on a wrong append position).
    pub headers: Vec<(&'static str, String)>,
}

impl std::fmt::Display for ObjError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for ObjError {}

impl ObjError {
    pub fn new(code: Code, message: impl Into<String>) -> ObjError {
        ObjError {
            code,
            message: message.into(),
            bucket: None,
            key: None,
            headers: Vec::new(),
        }
    }

    pub fn with_bucket(mut self, b: &str) -> ObjError {
        self.bucket = Some(b.to_string());
        self
    }

    pub fn with_key(mut self, k: &str) -> ObjError {
        self.key = Some(k.to_string());
        self
    }

    pub fn with_header(mut self, name: &'static str, value: String) -> ObjError {
        self.headers.push((name, value));
        self
    }

    /// The s3s error (S3 XML body, status, code).
    pub fn to_s3(&self) -> s3s::S3Error {
        let code = s3s::S3ErrorCode::from_bytes(self.code.as_str().as_bytes())
            .unwrap_or(s3s::S3ErrorCode::InternalError);
        let mut e = s3s::S3Error::with_message(code, self.message.clone());
        e.set_status_code(self.code.status());
        e
    }
}

impl From<ObjError> for s3s::S3Error {
    fn from(e: ObjError) -> s3s::S3Error {
        e.to_s3()
    }
}
