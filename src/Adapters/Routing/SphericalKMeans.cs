namespace TinyTrain.Adapters.Routing;

/// <summary>
/// k centres of unit vectors by cosine (spherical k-means), deterministic: evenly spaced members are the
/// first centres; at most <see cref="Rounds"/> rounds, fewer when no vector changes cluster.
/// </summary>
internal static class SphericalKMeans
{
    public const int Rounds = 20;

    public static List<float[]> Run(List<float[]> vectors, int k)
    {
        k = Math.Min(k, vectors.Count);
        int dims = vectors[0].Length;
        var centres = new List<float[]>(k);
        for (int c = 0; c < k; c++) centres.Add((float[])vectors[c * vectors.Count / k].Clone());
        var assigned = new int[vectors.Count];
        Array.Fill(assigned, -1);
        for (int round = 0; round < Rounds; round++)
        {
            bool changed = false;
            for (int i = 0; i < vectors.Count; i++)
            {
                int best = 0;
                float bestDot = float.NegativeInfinity;
                for (int c = 0; c < k; c++)
                {
                    float dot = Dot(vectors[i], centres[c]);
                    if (dot > bestDot) { bestDot = dot; best = c; }
                }
                if (assigned[i] != best) { assigned[i] = best; changed = true; }
            }
            if (!changed) break;
            foreach (float[] c in centres) Array.Clear(c);
            for (int i = 0; i < vectors.Count; i++)
            {
                float[] c = centres[assigned[i]], v = vectors[i];
                for (int d = 0; d < dims; d++) c[d] += v[d];
            }
            foreach (float[] c in centres) Normalize(c);
        }
        return centres;
    }

    private static float Dot(float[] a, float[] b)
    {
        float s = 0;
        for (int i = 0; i < a.Length; i++) s += a[i] * b[i];
        return s;
    }

    private static void Normalize(float[] v)
    {
        double length = 0;
        foreach (float x in v) length += x * x;
        if (length == 0) return;
        float inverse = (float)(1 / Math.Sqrt(length));
        for (int i = 0; i < v.Length; i++) v[i] *= inverse;
    }
}
