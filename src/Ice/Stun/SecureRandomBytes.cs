using System.Security.Cryptography;

namespace Transport.Ice.Stun;

/// <summary>
/// Cryptographically strong random bytes for transaction IDs (RFC 8489 section 5), drawn from a per-thread block
/// of the system generator: one call to the platform generator costs about a microsecond whatever its size, and
/// an idle agent needs twelve bytes for every keepalive and consent check. Bytes handed out are cleared from the
/// block, so none is ever used twice or kept after use.
/// </summary>
internal static class SecureRandomBytes
{
    private const int BlockSize = 1024;

    [ThreadStatic] private static byte[]? t_block;
    [ThreadStatic] private static int t_next;

    public static void Fill(Span<byte> destination)
    {
        if (destination.Length > BlockSize / 4)
        {
            RandomNumberGenerator.Fill(destination);
            return;
        }
        var block = t_block ??= new byte[BlockSize];
        if (t_next == 0 || t_next + destination.Length > BlockSize)
        {
            RandomNumberGenerator.Fill(block);
            t_next = 0;
        }
        var taken = block.AsSpan(t_next, destination.Length);
        taken.CopyTo(destination);
        taken.Clear();
        t_next += destination.Length;
        if (t_next == BlockSize) t_next = 0;
    }
}
