/// The keys of the archiver (`lua/README.md`, "Archiver").
///
/// Kept beside the archiver while it is new; they belong with the others in
/// `ConveyorKeys.swift`.
extension ConveyorKeys.Partition {
    /// `<prefix>archiving`: HASH job id → identity of the archiver that claimed it.
    public var archiving: String { prefix + "archiving" }
}

extension ConveyorKeys {
    /// `<namespace>:archivers`: HASH archiver identity → the token of the history
    /// directory it belongs to. One identity never writes to two directories.
    public var archivers: String { "\(namespace):archivers" }
}
