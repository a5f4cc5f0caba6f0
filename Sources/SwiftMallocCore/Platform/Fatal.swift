// Stopping the process with a message, without allocating.
//
// Swift's own `fatalError` and `precondition` may format strings on the heap;
// from inside malloc that would recurse. These write a static message with
// write(2) and abort.
import SwiftMallocShims

@inline(never)
func fatal(_ message: StaticString) -> Never {
    message.withCString { sm_fatal($0) }
}

/// Stops with "swiftmalloc: <message>0x<pointer>".
@inline(never)
func fatal(_ message: StaticString, pointer: UnsafeRawPointer?) -> Never {
    message.withCString { sm_fatal_pointer($0, pointer) }
}

extension StaticString {
    /// The literal's bytes as a C string (string literals are NUL-terminated).
    @inline(__always)
    func withCString<R>(_ body: (UnsafePointer<CChar>) -> R) -> R {
        body(UnsafeRawPointer(utf8Start).assumingMemoryBound(to: CChar.self))
    }
}

/// What is wrong with a pointer handed to free (or realloc, or
/// malloc_usable_size), found under a lock and reported after it.
enum FreeProblem {
    case invalidPointer
    case doubleFree

    var message: StaticString {
        switch self {
        case .invalidPointer: return "free(): invalid pointer "
        case .doubleFree: return "free(): double free "
        }
    }
}
