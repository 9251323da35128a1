namespace Transport.Sctp;

/// <summary>
/// A single-threaded pool of byte arrays in power-of-two size classes, owned by one association. The shared
/// ArrayPool keeps only a few arrays per size, but an association holds up to a whole window of message
/// buffers at once; this pool keeps them all (up to <see cref="_maxRetained"/> bytes) so that the steady
/// state allocates nothing.
/// </summary>
internal sealed class BufferPool(long maxRetained)
{
    private const int MinClass = 6; // 64 bytes
    // A size class's stack is made when an array of that class is first returned: an association uses a few classes.
    private readonly Stack<byte[]>?[] _classes = new Stack<byte[]>?[31];
    private readonly long _maxRetained = maxRetained;
    private long _retained;

    private static int ClassOf(int size) => Math.Max(MinClass, 32 - System.Numerics.BitOperations.LeadingZeroCount((uint)Math.Max(1, size - 1)));

    public byte[] Rent(int size)
    {
        var k = ClassOf(size);
        if (_classes[k] is { } stack && stack.TryPop(out var a)) { _retained -= a.Length; return a; }
        return new byte[1 << k];
    }

    public void Return(byte[] array)
    {
        if (array.Length == 0 || !System.Numerics.BitOperations.IsPow2(array.Length)) return;
        if (_retained + array.Length > _maxRetained) return;
        var k = System.Numerics.BitOperations.Log2((uint)array.Length);
        if (k < MinClass) return;
        _retained += array.Length;
        (_classes[k] ??= new Stack<byte[]>()).Push(array);
    }

    /// <summary>
    /// Drops every retained array (an idle association keeps none); the next rents allocate or come from <see cref="System.Buffers.ArrayPool{T}.Shared"/>'s
    /// callers.
    /// </summary>
    public void Trim()
    {
        if (_retained == 0) return;
        for (var k = 0; k < _classes.Length; k++) _classes[k] = null;
        _retained = 0;
    }
}
