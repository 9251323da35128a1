using System.Security.Cryptography;
using Transport.Dtls.Tls13;

namespace Transport.Dtls.Tests;

/// <summary>The TLS 1.3 key schedule against RFC 8448 section 3 (simple 1-RTT), then with the DTLS 1.3 prefix.</summary>
public sealed class Tls13KeyScheduleTests
{
    private static byte[] H(string hex) => Convert.FromHexString(hex);

    private const string Shared = "8bd4054fb55b9d63fdfbacf9f04b9f0d35e6d63f537563efd46272900f89492d";
    private const string HelloHash = "860c06edc07858ee8e78f0e7428c58edd6b43f2ca3e6e95f02ed063cf0e1cad8";
    private const string ServerFinishedHash = "9608102a0f1ccc6db6250b7b7e417b1a000eaada3daae4777a7686c9ff83df13";

    [Fact]
    public void Rfc8448SimpleOneRttScheduleMatchesWithTheTlsPrefix()
    {
        var ks = new Tls13KeySchedule(HashAlgorithmName.SHA256, Tls13KeySchedule.TlsPrefix);
        ks.SetSharedSecret(H(Shared));
        Assert.Equal(H("33ad0a1c607ec03b09e6cd9893680ce210adf300aa1f2660e1b22e10f170f92a"), ks.EarlySecret);
        Assert.Equal(H("6f2615a108c702c5678f54fc9dbab69716c076189c48250cebeac3576c3611ba"), ks.DeriveSecret(ks.EarlySecret!, "derived", ks.EmptyHash));
        Assert.Equal(H("1dc826e93606aa6fdc0aadc12f741b01046aa6b99f691ed221a9f0ca043fbeac"), ks.HandshakeSecret);
        ks.DeriveHandshakeTrafficSecrets(H(HelloHash));
        Assert.Equal(H("b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21"), ks.ClientHandshakeTrafficSecret);
        Assert.Equal(H("b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38"), ks.ServerHandshakeTrafficSecret);
        var (sKey, sIv, _) = ks.TrafficKeys(ks.ServerHandshakeTrafficSecret!, 16);
        Assert.Equal(H("3fce516009c21727d0f2e4e86ee403bc"), sKey);
        Assert.Equal(H("5d313eb2671276ee13000b30"), sIv);
        var (cKey, cIv, _) = ks.TrafficKeys(ks.ClientHandshakeTrafficSecret!, 16);
        Assert.Equal(H("dbfaa693d1762c5b666af5d950258d01"), cKey);
        Assert.Equal(H("5bd3c71b836e0b76bb73265f"), cIv);
        Assert.Equal(H("008d3b66f816ea559f96b537e885c31fc068bf492c652f01f288a1d8cdc19fc8"),
            ks.ExpandLabel(ks.ServerHandshakeTrafficSecret!, "finished", default, 32));
        Assert.Equal(H("18df06843d13a08bf2a449844c5f8a478001bc4d4c627984d5a41da8d0402919"), ks.MasterSecret);
        ks.DeriveApplicationSecrets(H(ServerFinishedHash));
        Assert.Equal(H("9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5"), ks.ClientApplicationTrafficSecret);
        Assert.Equal(H("a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643"), ks.ServerApplicationTrafficSecret);
        Assert.Equal(H("fe22f881176eda18eb8f44529e6792c50c9a3f89452f68d8ae311b4309d3cf50"), ks.ExporterMasterSecret);
        var (aKey, aIv, _) = ks.TrafficKeys(ks.ServerApplicationTrafficSecret!, 16);
        Assert.Equal(H("9f02283b6c9c07efc26bb9f2ac92e356"), aKey);
        Assert.Equal(H("cf782b88dd83549aadf1e984"), aIv);
        var (caKey, caIv, _) = ks.TrafficKeys(ks.ClientApplicationTrafficSecret!, 16);
        Assert.Equal(H("17422dda596ed5d9acd890e3c63f5051"), caKey);
        Assert.Equal(H("5b78923dee08579033e523d9"), caIv);
    }

    [Fact]
    public void FinishedIsHmacOfTheFinishedKeyOverTheTranscriptHash()
    {
        var ks = new Tls13KeySchedule(HashAlgorithmName.SHA256, Tls13KeySchedule.TlsPrefix);
        var baseKey = H("b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38");
        var transcript = SHA256.HashData("messages"u8);
        var expected = HMACSHA256.HashData(H("008d3b66f816ea559f96b537e885c31fc068bf492c652f01f288a1d8cdc19fc8"), transcript);
        Assert.Equal(expected, ks.FinishedVerifyData(baseKey, transcript));
    }

    [Fact]
    public void DtlsPrefixChangesEveryLabelAndTheHkdfLabelLayoutIsRfc9147()
    {
        var tls = new Tls13KeySchedule(HashAlgorithmName.SHA256, Tls13KeySchedule.TlsPrefix);
        var dtls = new Tls13KeySchedule(HashAlgorithmName.SHA256);
        tls.SetSharedSecret(H(Shared));
        dtls.SetSharedSecret(H(Shared));
        // Extract does not use labels: the early secret is the same; everything after "derived" differs.
        Assert.Equal(tls.EarlySecret, dtls.EarlySecret);
        Assert.NotEqual(tls.HandshakeSecret, dtls.HandshakeSecret);
        // HkdfLabel = length(2) || len(label) || "dtls13" + label || len(context) || context, computed by hand.
        var secret = dtls.HandshakeSecret!;
        var info = new List<byte> { 0, 32, (byte)("dtls13".Length + "c hs traffic".Length) };
        info.AddRange("dtls13c hs traffic"u8.ToArray());
        info.Add(32);
        info.AddRange(H(HelloHash));
        var expected = HKDF.Expand(HashAlgorithmName.SHA256, secret, 32, info.ToArray());
        dtls.DeriveHandshakeTrafficSecrets(H(HelloHash));
        Assert.Equal(expected, dtls.ClientHandshakeTrafficSecret);
        // SHA-384 suites produce 48-byte secrets.
        var big = new Tls13KeySchedule(HashAlgorithmName.SHA384);
        big.SetSharedSecret(H(Shared));
        Assert.Equal(48, big.MasterSecret!.Length);
    }

    [Fact]
    public void ExporterIsRfc8446Section75AndSplitsForSrtp()
    {
        var ks = new Tls13KeySchedule(HashAlgorithmName.SHA256, Tls13KeySchedule.TlsPrefix);
        ks.SetSharedSecret(H(Shared));
        ks.DeriveApplicationSecrets(H(ServerFinishedHash));
        // By hand: Expand-Label(Derive-Secret(exp_master, label, ""), "exporter", Hash(context), L).
        var inner = ks.ExpandLabel(ks.ExporterMasterSecret!, "EXTRACTOR-dtls_srtp", SHA256.HashData([]), 32);
        var expected = ks.ExpandLabel(inner, "exporter", SHA256.HashData([]), 60);
        var ekm = ks.Export("EXTRACTOR-dtls_srtp", default, 60);
        Assert.Equal(expected, ekm);
        Assert.NotEqual(ekm, ks.Export("EXTRACTOR-dtls_srtp", [1], 60));
        var keys = SrtpKeyingMaterial.Split(SrtpProtectionProfile.AeadAes128Gcm, ekm, true);
        Assert.Equal(ekm.AsSpan(0, 16).ToArray(), keys.LocalKey);
    }
}
