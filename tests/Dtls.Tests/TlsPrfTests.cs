using System.Security.Cryptography;
using Transport.Dtls.Crypto;

namespace Transport.Dtls.Tests;

/// <summary>TLS 1.2 PRF against the published vectors (IETF TLS WG list, msg03416; also used by BearSSL and others).</summary>
public sealed class TlsPrfTests
{
    [Fact]
    public void Sha256PrfMatchesPublishedVector()
    {
        var output = new byte[100];
        TlsPrf.Derive(HashAlgorithmName.SHA256, Convert.FromHexString("9bbe436ba940f017b17652849a71db35"), "test label",
            Convert.FromHexString("a0ba9f936cda311827a6f796ffd5198c"), default, output);
        Assert.Equal(
            "e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a6b301791e90d35c9c9a46b4e14baf9af0fa022f7077def17abfd3797c0564bab" +
            "4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff70187347b66", Convert.ToHexStringLower(output));
    }

    [Fact]
    public void Sha384PrfMatchesPublishedVector()
    {
        var output = new byte[148];
        TlsPrf.Derive(HashAlgorithmName.SHA384, Convert.FromHexString("b80b733d6ceefcdc71566ea48e5567df"), "test label",
            Convert.FromHexString("cd665cf6a8447dd6ff8b27555edb7465"), default, output);
        Assert.Equal(
            "7b0c18e9ced410ed1804f2cfa34a336a1c14dffb4900bb5fd7942107e81c83cde9ca0faa60be9fe34f82b1233c9146a0e534cb400fed2700884f9dc236f80edd" +
            "8bfa961144c9e8d792eca722a7b32fc3d416d473ebc2c5fd4abfdad05d9184259b5bf8cd4d90fa0d31e2dec479e4f1a26066f2eea9a69236a3e52655c9e9aee6" +
            "91c8f3a26854308d5eaa3be85e0990703d73e56f", Convert.ToHexStringLower(output));
    }

    [Fact]
    public void SplitSeedGivesTheSameOutputAsOneSeed()
    {
        var seed = Convert.FromHexString("a0ba9f936cda311827a6f796ffd5198c");
        var one = new byte[40];
        var two = new byte[40];
        TlsPrf.Derive(HashAlgorithmName.SHA256, [1, 2, 3], "x", seed, default, one);
        TlsPrf.Derive(HashAlgorithmName.SHA256, [1, 2, 3], "x", seed.AsSpan(0, 5), seed.AsSpan(5), two);
        Assert.Equal(one, two);
    }
}
