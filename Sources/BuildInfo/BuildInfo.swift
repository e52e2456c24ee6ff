/// What this binary is: the release version and the commit it was built from.
public enum BuildInfo {
    /// The release version (semantic versioning), raised with each tagged release.
    public static let version = "0.19.0"
    /// The source commit (12 hex digits, "-modified" when built from uncommitted changes to
    /// tracked files), or "unknown" when built outside a git checkout.
    public static let commit = sourceCommit
    /// The line every executable prints for `--version`.
    public static func versionLine(_ program: String) -> String { "\(program) \(version) (commit \(commit))" }
}
