/// A layer, block or model, and the modules it is built from: the tree that one call walks to
/// switch a whole model between training and evaluation.
///
/// A leaf (a layer of parameters) has no children, the default. A model lists the modules it
/// calls; a module it forgets stays in whatever mode it was.
public protocol Module: AnyObject {
    /// The modules directly inside this one.
    var children: [any Module] { get }
}

/// A module that behaves differently in training and in evaluation (dropout, batch norm).
public protocol ModalModule: Module {
    var isTraining: Bool { get set }
}

extension Module {
    public var children: [any Module] { [] }

    /// This module and every module below it, depth first.
    public var modules: [any Module] { [self as any Module] + children.flatMap(\.modules) }

    /// Puts every modal module of the tree (this one included) in training (`true`) or
    /// evaluation (`false`) mode.
    public func setTraining(_ training: Bool) {
        for case let module as any ModalModule in modules { module.isTraining = training }
    }
}
