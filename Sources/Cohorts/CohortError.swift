/// A problem with cohort data: what is wrong, where (file, dataset, row), and what to do.
/// Commands print it and exit with status 2 (bad input).
public struct CohortError: Error, CustomStringConvertible, Equatable {
    public var file: String
    public var dataset: String?
    public var row: Int?
    public var message: String

    public init(file: String, dataset: String? = nil, row: Int? = nil, _ message: String) {
        (self.file, self.dataset, self.row, self.message) = (file, dataset, row, message)
    }

    public var description: String {
        var place = file
        if let dataset { place += ": \(dataset)" }
        if let row { place += " row \(row)" }
        return "\(place): \(message)"
    }
}
