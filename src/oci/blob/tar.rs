//! The tar stream of a layer, walked header by header as it is
//! decompressed: only `package.yaml` is passed on, to the meta scanner.

use std::io::{self, Write};

use crate::package::PackageMeta;

use super::invalid::{Invalid, Res, invalid};
use super::limits::{LayerLimits, MAX_NAME_BYTES, MAX_PAX_BYTES, PACKAGE_FILE};
use super::meta::MetaScanner;

pub(super) enum Data {
    Skip,
    LongName(Vec<u8>),
    Pax(Vec<u8>),
    Package,
}

pub(super) enum TarState {
    Header,
    Data {
        kind: Data,
        remaining: u64,
        pad: u64,
    },
    /// End-of-archive block seen.
    End,
}

/// The receiving end of the decompressor: walks tar headers and hands
/// `package.yaml` to the YAML scanner.
pub(super) struct TarSink {
    pub(super) limits: LayerLimits,
    pub(super) uncompressed: u64,
    pub(super) entries: usize,
    pub(super) header: Vec<u8>,
    pub(super) state: TarState,
    pub(super) next_name: Option<String>,
    pub(super) next_size: Option<u64>,
    pub(super) scanner: Option<MetaScanner>,
    /// The scanner's final answer once package.yaml is read.
    pub(super) result: Option<Res<Option<PackageMeta>>>,
    /// An error raised while writing (the decompressor only sees io errors).
    pub(super) error: Option<Invalid>,
}

impl Write for TarSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.error.is_some() {
            // Rejected once, rejected for good: the walk's state is no
            // longer where the stream is.
            return Err(io::Error::other("layer rejected"));
        }
        if self.settled() {
            return Ok(buf.len());
        }
        match self.push(buf) {
            Ok(()) => Ok(buf.len()),
            Err(e) => {
                self.error = Some(e);
                Err(io::Error::other("layer rejected"))
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl TarSink {
    pub(super) fn new(limits: LayerLimits) -> Self {
        Self {
            limits,
            uncompressed: 0,
            entries: 0,
            header: Vec::with_capacity(512),
            state: TarState::Header,
            next_name: None,
            next_size: None,
            scanner: None,
            result: None,
            error: None,
        }
    }

    /// package.yaml was read (whatever it held), or the archive ended.
    pub(super) fn settled(&self) -> bool {
        self.result.is_some() || matches!(self.state, TarState::End)
    }

    pub(super) fn outcome(&mut self) -> Res<Option<PackageMeta>> {
        self.result.take().unwrap_or(Ok(None))
    }

    /// The data ran out before the archive said it ended.
    pub(super) fn end_of_data(&mut self) -> Res<Option<PackageMeta>> {
        match &self.state {
            TarState::Header if self.header.is_empty() => Ok(None),
            TarState::End => Ok(None),
            _ => invalid("layer tar archive is truncated"),
        }
    }

    pub(super) fn push(&mut self, mut buf: &[u8]) -> Res<()> {
        self.uncompressed += buf.len() as u64;
        if self.uncompressed > self.limits.max_uncompressed_bytes {
            return invalid(format!(
                "layer is larger than {} bytes uncompressed before its meta document",
                self.limits.max_uncompressed_bytes
            ));
        }
        while !buf.is_empty() && !self.settled() {
            match &mut self.state {
                TarState::End => break,
                TarState::Header => {
                    let take = (512 - self.header.len()).min(buf.len());
                    self.header.extend_from_slice(&buf[..take]);
                    buf = &buf[take..];
                    if self.header.len() == 512 {
                        let header = std::mem::take(&mut self.header);
                        self.on_header(&header)?;
                    }
                }
                TarState::Data {
                    kind,
                    remaining,
                    pad,
                } => {
                    if *remaining > 0 {
                        let take = (*remaining).min(buf.len() as u64) as usize;
                        let (data, rest) = buf.split_at(take);
                        buf = rest;
                        *remaining -= take as u64;
                        match kind {
                            Data::Skip => {}
                            Data::LongName(v) | Data::Pax(v) => v.extend_from_slice(data),
                            Data::Package => {
                                let scanner = self.scanner.as_mut().expect("scanner set");
                                if let Some(found) = scanner.push(data)? {
                                    self.result = Some(Ok(Some(found)));
                                    return Ok(());
                                }
                            }
                        }
                        if *remaining > 0 {
                            continue;
                        }
                        self.end_of_entry_data()?;
                        continue;
                    }
                    let take = (*pad).min(buf.len() as u64);
                    buf = &buf[take as usize..];
                    *pad -= take;
                    if *pad == 0 {
                        self.state = TarState::Header;
                    }
                }
            }
        }
        Ok(())
    }

    /// Called when an entry's data (not its padding) has been read.
    pub(super) fn end_of_entry_data(&mut self) -> Res<()> {
        let TarState::Data { kind, .. } = &mut self.state else {
            return Ok(());
        };
        match std::mem::replace(kind, Data::Skip) {
            Data::Skip => {}
            Data::LongName(v) => {
                let end = v.iter().position(|&b| b == 0).unwrap_or(v.len());
                self.next_name = Some(String::from_utf8_lossy(&v[..end]).into_owned());
            }
            Data::Pax(v) => self.on_pax(&v)?,
            Data::Package => {
                let scanner = self.scanner.take().expect("scanner set");
                self.result = Some(scanner.finish().map(Some));
            }
        }
        Ok(())
    }

    pub(super) fn on_header(&mut self, h: &[u8]) -> Res<()> {
        if h.iter().all(|&b| b == 0) {
            // Two zero blocks end an archive; one is enough to stop looking.
            self.state = TarState::End;
            return Ok(());
        }
        self.entries += 1;
        if self.entries > self.limits.max_tar_entries {
            return invalid(format!(
                "layer tar archive has more than {} entries",
                self.limits.max_tar_entries
            ));
        }
        let stored = octal(&h[148..156]).ok_or_else(|| {
            Invalid("layer is not a tar archive (bad header checksum field)".into())
        })?;
        let sum: u64 = h
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    b as u64
                }
            })
            .sum();
        if sum != stored {
            return invalid(format!(
                "layer is not a tar archive (header checksum mismatch after {} entries)",
                self.entries - 1
            ));
        }
        let size = match self.next_size.take() {
            Some(size) => size,
            None => octal(&h[124..136])
                .ok_or_else(|| Invalid("tar header has a bad size field".into()))?,
        };
        let typeflag = h[156];
        let name = match self.next_name.take() {
            Some(name) => name,
            None => header_name(h),
        };
        let pad = (512 - size % 512) % 512;
        let kind = match typeflag {
            b'L' => {
                if size > MAX_NAME_BYTES {
                    return invalid(format!(
                        "tar long name is longer than {MAX_NAME_BYTES} bytes"
                    ));
                }
                Data::LongName(Vec::with_capacity(size as usize))
            }
            b'x' => {
                if size > MAX_PAX_BYTES {
                    return invalid(format!(
                        "tar pax header is larger than {MAX_PAX_BYTES} bytes"
                    ));
                }
                Data::Pax(Vec::with_capacity(size as usize))
            }
            b'0' | 0 | b'7' if base_name(&name) == PACKAGE_FILE => {
                self.scanner = Some(MetaScanner::new(self.limits));
                Data::Package
            }
            _ => Data::Skip,
        };
        self.state = TarState::Data {
            kind,
            remaining: size,
            pad,
        };
        if size == 0 {
            self.end_of_entry_data()?;
            if let TarState::Data { pad, .. } = self.state
                && pad == 0
            {
                self.state = TarState::Header;
            }
        }
        Ok(())
    }

    pub(super) fn on_pax(&mut self, mut v: &[u8]) -> Res<()> {
        // Records are "<len> <key>=<value>\n", len counting the whole record.
        while !v.is_empty() {
            let space = v
                .iter()
                .position(|&b| b == b' ')
                .ok_or_else(|| Invalid("bad tar pax record".into()))?;
            let len: usize = std::str::from_utf8(&v[..space])
                .ok()
                .and_then(|s| s.parse().ok())
                .filter(|&l| l > space && l <= v.len())
                .ok_or_else(|| Invalid("bad tar pax record length".into()))?;
            let record = &v[space + 1..len];
            let record = record.strip_suffix(b"\n").unwrap_or(record);
            if let Some(eq) = record.iter().position(|&b| b == b'=') {
                let (key, value) = (&record[..eq], &record[eq + 1..]);
                match key {
                    b"path" => {
                        if value.len() as u64 > MAX_NAME_BYTES {
                            return invalid("tar pax path is too long");
                        }
                        self.next_name = Some(String::from_utf8_lossy(value).into_owned());
                    }
                    b"size" => {
                        let size = std::str::from_utf8(value)
                            .ok()
                            .and_then(|s| s.parse().ok())
                            .ok_or_else(|| Invalid("bad tar pax size".into()))?;
                        self.next_size = Some(size);
                    }
                    _ => {}
                }
            }
            v = &v[len..];
        }
        Ok(())
    }
}

pub(super) fn cstr(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    &field[..end]
}

pub(super) fn header_name(h: &[u8]) -> String {
    let name = cstr(&h[0..100]);
    let ustar = &h[257..262] == b"ustar";
    let prefix = if ustar { cstr(&h[345..500]) } else { &[] };
    if prefix.is_empty() {
        String::from_utf8_lossy(name).into_owned()
    } else {
        format!(
            "{}/{}",
            String::from_utf8_lossy(prefix),
            String::from_utf8_lossy(name)
        )
    }
}

pub(super) fn base_name(name: &str) -> &str {
    let trimmed = name.trim_end_matches('/');
    trimmed.rsplit('/').next().unwrap_or(trimmed)
}

/// A tar numeric field: octal text, or base-256 when the high bit is set.
pub(super) fn octal(field: &[u8]) -> Option<u64> {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        let mut n: u64 = (field[0] & 0x7f) as u64;
        for &b in &field[1..] {
            n = n.checked_mul(256)?.checked_add(b as u64)?;
        }
        return Some(n);
    }
    let text = std::str::from_utf8(field).ok()?;
    let text = text.trim_matches(|c: char| c == '\0' || c == ' ');
    if text.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(text, 8).ok()
}
