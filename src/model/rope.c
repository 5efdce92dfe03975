/*
 * RoPE's frequencies, in one place for the run (session.c fills its tables
 * from them) and the GGUF writer: theta^(-2j / head_size), then Llama 3's
 * scaling, given either as the config's four numbers (Hugging Face's
 * rope_scaling, llama2.c's header extension) or as GGUF's rope_freqs.weight,
 * the divisor of each frequency that llama.cpp's converter stores instead.
 */
#include <math.h>

#include "model.h"
#include "platform/float_math.h"

static float base_frequency(const llama2_model *m, int j) {
    return 1.0f / l2_powf(m->config.rope_theta, (float)(2 * j) / (float)m->head_size);
}

/* A frequency under RoPE scaling of type llama3, as Hugging Face's
 * _compute_llama3_parameters computes it: long wavelengths slowed down by
 * the factor, short ones kept, a linear blend between. */
static float llama3_scaled(const llama2_config *c, float freq) {
    const float pi = 3.14159265358979f;
    const float old = (float)c->rope_original_context, factor = c->rope_scaling_factor;
    const float low = c->rope_low_freq_factor, high = c->rope_high_freq_factor;
    const float wavelen = 2.0f * pi / freq;
    if (wavelen < old / high) return freq;
    if (wavelen > old / low) return freq / factor;
    const float smooth = (old / wavelen - low) / (high - low);
    return (1.0f - smooth) * freq / factor + smooth * freq;
}

float l2_rope_frequency(const llama2_model *m, int j) {
    const float freq = base_frequency(m, j);
    if (m->rope_freq_factors) return freq / m->rope_freq_factors[j];
    return m->config.rope_scaling_factor != 0.0f ? llama3_scaled(&m->config, freq) : freq;
}

/* The divisor d of each frequency, as llama.cpp's converter computes it
 * (the scaling's factor where it applies whole, 1 where not, the blend's
 * inverse between), nudged by a few ulps where needed so that freq / d is
 * exactly the scaled frequency: a GGUF file then runs as its checkpoint. */
void l2_rope_factors(const llama2_model *m, float *out) {
    for (int j = 0; j < m->head_size / 2; j++) {
        if (m->rope_freq_factors) {
            out[j] = m->rope_freq_factors[j];
            continue;
        }
        const float freq = base_frequency(m, j), want = l2_rope_frequency(m, j);
        float d = freq / want;
        for (int step = 0; step < 8 && freq / d != want; step++)
            d = freq / d > want ? nextafterf(d, INFINITY) : nextafterf(d, 0.0f);
        out[j] = freq / d == want ? d : freq / want; /* none exact: the nearest */
    }
}
