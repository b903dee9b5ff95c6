//! The configured bearer tokens and their kinds: a full token may do
//! anything, a read-only token may only read (GET/HEAD on the JSON API,
//! viewing the web console).

use anyhow::Context;
use switchyard_shared::platform::config::ApiOpts;

/// What a token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// Every request.
    Full,
    /// Reads only: any other method is refused with 403 `read_only`.
    Read,
}

impl TokenKind {
    /// The name used in session cookies and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Full => "full",
            TokenKind::Read => "read",
        }
    }

    /// The kind named by [`as_str`](Self::as_str).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "full" => Some(TokenKind::Full),
            "read" => Some(TokenKind::Read),
            _ => None,
        }
    }
}

/// One accepted token.
#[derive(Clone, Debug)]
pub struct Token {
    pub kind: TokenKind,
    pub secret: String,
    /// Who presented it, for histories: `token-3`, `read-token-1`.
    pub label: String,
}

/// Every accepted token; empty means the API is open.
#[derive(Clone, Debug, Default)]
pub struct Tokens {
    list: Vec<Token>,
}

/// Constant-time comparison, so a token cannot be guessed byte by byte.
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Tokens {
    /// Tokens of both kinds, full ones first; each kind numbered from 1.
    pub fn new(full: Vec<String>, read: Vec<String>) -> Self {
        let full = full.into_iter().enumerate().map(|(i, secret)| Token {
            kind: TokenKind::Full,
            secret,
            label: format!("token-{}", i + 1),
        });
        let read = read.into_iter().enumerate().map(|(i, secret)| Token {
            kind: TokenKind::Read,
            secret,
            label: format!("read-token-{}", i + 1),
        });
        Self {
            list: full.chain(read).collect(),
        }
    }

    /// True when no token is configured (the API and console are open).
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// How many tokens are configured.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Every token.
    pub fn iter(&self) -> impl Iterator<Item = &Token> {
        self.list.iter()
    }

    /// The token equal to `presented`; every token is compared, in
    /// constant time, so timing says nothing about which one matched.
    pub fn find(&self, presented: &str) -> Option<&Token> {
        let mut hit = None;
        for t in &self.list {
            if same(presented.as_bytes(), t.secret.as_bytes()) {
                hit = Some(t);
            }
        }
        hit
    }
}

/// All bearer tokens from flags/environment and the token file (where a
/// `read:` prefix makes a line a read-only token).
pub fn load_tokens(opts: &ApiOpts) -> anyhow::Result<Tokens> {
    let clean = |list: &[String]| -> Vec<String> {
        list.iter()
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .collect()
    };
    let mut full = clean(&opts.api_tokens);
    let mut read = clean(&opts.api_read_tokens);
    if let Some(path) = &opts.api_token_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading token file {}", path.display()))?;
        for line in text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            match line.strip_prefix("read:") {
                Some(t) if !t.trim().is_empty() => read.push(t.trim().to_owned()),
                Some(_) => {}
                None => full.push(line.to_owned()),
            }
        }
    }
    Ok(Tokens::new(full, read))
}
