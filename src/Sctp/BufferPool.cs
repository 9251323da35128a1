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
    private readonly Stack<byte[]>[] _classes = CreateClasses();
    private readonly long _maxRetained = maxRetained;
    private long _retained;

    private static Stack<byte[]>[] CreateClasses()
    {
        var c = new Stack<byte[]>[31];
        for (var i = 0; i < c.Length; i++) c[i] = new Stack<byte[]>();
        return c;
    }

    private static int ClassOf(int size) => Math.Max(MinClass, 32 - System.Numerics.BitOperations.LeadingZeroCount((uint)Math.Max(1, size - 1)));

    public byte[] Rent(int size)
    {
        var k = ClassOf(size);
        if (_classes[k].TryPop(out var a)) { _retained -= a.Length; return a; }
        return new byte[1 << k];
    }

    public void Return(byte[] array)
    {
        if (array.Length == 0 || !System.Numerics.BitOperations.IsPow2(array.Length)) return;
        if (_retained + array.Length > _maxRetained) return;
        var k = System.Numerics.BitOperations.Log2((uint)array.Length);
        if (k < MinClass) return;
        _retained += array.Length;
        _classes[k].Push(array);
    }
}
